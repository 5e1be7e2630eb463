"""Chapter 15's reduced-but-real measurement: Lunelli's contrastive presets and their backprop twins on the first
images of the real CIFAR-10, for a few epochs; a JSON that chapter 15 prints beside Tables 6.2 and 6.4.

    HEBBLIB_DATA=ROOT nice -n 10 python scripts/ch15_reduced.py --threads 1          # the committed setting
    python scripts/ch15_reduced.py --presets contrastive_mlp --mlp-epochs 20 --seeds 2

Every run is one ``hebblib.contrastive.run_contrastive`` of the preset with ``epochs``, ``limit_train`` and
``limit_test`` (10 % of the limited training images are the validation split), so it lands in the usual runs
folder (default runs/ch15_reduced/), each epoch is checkpointed, and an interrupted script resumes where it
stopped (a finished run is read back). The full-data numbers need the presets' own 50 (conv) / 100 (MLP)
epochs on all 45,000 images: ``python -m hebblib reproduce --preset NAME --seeds 3 --source full``.
Writes ``--json`` (default docs/results/chapters/ch15_reduced.json; a reduced setting, so it adds no row to
the full-data table of docs/results.md).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from hebblib.contrastive import get_contrastive_preset, list_contrastive_presets, run_contrastive  # noqa: E402
from hebblib.results import mean_std, write_json  # noqa: E402
from hebblib.runtime import cpu_model, describe_device, get_device  # noqa: E402

PRESETS = ("contrastive_mlp", "contrastive_mlp_backprop", "contrastive_conv_f1", "contrastive_conv_f1_backprop")
DEFAULT_JSON = ROOT / "docs" / "results" / "chapters" / "ch15_reduced.json"
METRICS = ("final_test_acc", "test_acc_at_best_val", "max_test_acc")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list_contrastive_presets())
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--limit-train", type=int, default=5000)
    parser.add_argument("--limit-test", type=int, default=2000)
    parser.add_argument("--mlp-epochs", type=int, default=3, help="epochs of the MLP presets (the thesis: 100)")
    parser.add_argument("--conv-epochs", type=int, default=3, help="epochs of the conv presets (the thesis: 50)")
    parser.add_argument("--source", choices=("full", "subset"), default="full",
                        help="full: real CIFAR-10 from $HEBBLIB_DATA (or --data); subset: the shipped subset")
    parser.add_argument("--data", default=None, metavar="ROOT")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", default=str(ROOT / "runs" / "ch15_reduced"))
    parser.add_argument("--json", default=str(DEFAULT_JSON))
    args = parser.parse_args(argv)
    for name in ("seeds", "mlp_epochs", "conv_epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def measure(args) -> dict:
    """Every preset for every seed; per preset the mean ± sample std of each metric and the runs."""
    started, load_before = time.perf_counter(), os.getloadavg()
    presets, data = {}, None
    for name in args.presets:
        network = get_contrastive_preset(name)["network"]
        epochs = args.mlp_epochs if network == "mlp" else args.conv_epochs
        runs = []
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            result = run_contrastive(name, seed=seed, root=args.data, source=args.source, device=args.device,
                                     quick=False, epochs=epochs, limit_train=args.limit_train,
                                     limit_test=args.limit_test, out=args.out, progress=False, notice=print)
            data = result["data"]
            runs.append({"seed": seed, **{m: result[m] for m in METRICS}, "best_val_epoch": result["best_val_epoch"],
                         "images_per_s": result["images_per_s"],
                         "history": [{k: e[k] for k in ("epoch", "train_loss", "train_acc", "val_acc", "test_acc",
                                                        "seconds")} for e in result["epochs"]],
                         "rates_last_epoch": result["epochs"][-1].get("rates"),
                         "reused": bool(result.get("reused")), "wall_s": time.perf_counter() - t0,
                         "run_dir": os.path.relpath(result["run_dir"], ROOT)})
            print(f"{name}, seed {seed}: at best val {result['test_acc_at_best_val']:.2f} %, final "
                  f"{result['final_test_acc']:.2f} % after {epochs} epochs ({result['images_per_s']:.1f} img/s"
                  f"{', read back' if result.get('reused') else ''})", flush=True)
        presets[name] = {"epochs": epochs, "published": result["published"], "published_std": result["published_std"],
                         **{m: mean_std([r[m] for r in runs]) for m in METRICS}, "runs": runs}
    return {"presets": presets, "data": data, "wall_s": time.perf_counter() - started, "load_before": load_before,
            "load_after": os.getloadavg()}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = measure(args)
    data = out["data"]
    epochs = sorted({(get_contrastive_preset(n)["network"], p["epochs"]) for n, p in out["presets"].items()})
    setting = (f"{args.source} CIFAR-10: first {args.limit_train:,} training images ({data['n_train']:,} train / "
               f"{data['n_val']:,} validation), first {data['n_test']:,} test images; "
               + ", ".join(f"{e} epochs ({net})" for net, e in epochs)
               + f"; {args.seeds} seed(s); the presets' hyper-parameters otherwise (batch 32)")
    command = "python scripts/ch15_reduced.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    record = {
        "title": "Chapter 15: contrastive Hebbian presets and their backprop twins (reduced setting)",
        "rows": {},  # a reduced setting: no row in the full-data table
        "setting": setting, "presets": out["presets"], "n_seeds": args.seeds, "limit_train": args.limit_train,
        "limit_test": args.limit_test, "source": args.source, "data": data,
        "device": describe_device(get_device(args.device)), "cpu_model": cpu_model(),
        "threads": torch.get_num_threads(), "torch_version": torch.__version__, "wall_s": out["wall_s"],
        "load_average_before": out["load_before"], "load_average_after": out["load_after"],
        "command": command.strip(),
    }
    json_path = Path(args.json)
    write_json(json_path, record)
    print(f"\n{record['title']}\n{setting}")
    for name, p in out["presets"].items():
        b, f = p["test_acc_at_best_val"], p["final_test_acc"]
        published = "—" if p["published"] is None else f"{p['published']:.2f} ± {p['published_std']:.2f} (full data)"
        print(f"  {name:30s} at best val {b['mean']:.2f} ± {b['std']:.2f} %, final {f['mean']:.2f} ± "
              f"{f['std']:.2f} % | published {published}")
    print(f"wall time {out['wall_s'] / 60:.1f} min on {record['device']} ({record['cpu_model']}, "
          f"{record['threads']} threads; load average before {out['load_before'][0]:.1f}); "
          f"wrote {os.path.relpath(json_path, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
