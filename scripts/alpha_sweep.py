"""Chapter 14's α sweep: the α-hybrid (weight.grad = (1 − α)·grad_BP − α·ΔW_Hebb) at α = 0, 0.25, 0.5, 0.75, 1
on a reduced but real setting, several seeds; a JSON and a figure (test accuracy vs α, seeds as error bars).

    HEBBLIB_DATA=ROOT python scripts/alpha_sweep.py                    # the committed setting (defaults below)
    python scripts/alpha_sweep.py --preset hybrid_optimal --seeds 3 --limit-train 5000 --epochs 5

Every run is one ``hebblib.training.run_preset`` of the preset with ``--change '{"model": {"width_factor": W},
"supervised": {"alpha": A}}'``, so it lands in the usual runs folder (default runs/alpha_sweep/) and an
interrupted sweep resumes where it stopped. The reduced setting: the first ``--limit-train`` CIFAR-10 training
images (10 % of them the validation split), the first ``--limit-test`` test images, ``--epochs`` end-to-end
epochs, the network at ``--width`` of SoftHebb's channels. Writes ``--json`` (default
docs/results/chapters/ch14_alpha_sweep.json; no published figure exists, so it adds no row to the full-data
table of docs/results.md) and ``--figure`` (default the same path, .png).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from hebblib.presets import change_preset, get_preset  # noqa: E402
from hebblib.results import mean_std, write_json  # noqa: E402
from hebblib.runtime import cpu_model, describe_device, get_device  # noqa: E402
from hebblib.training import run_preset  # noqa: E402

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_JSON = ROOT / "docs" / "results" / "chapters" / "ch14_alpha_sweep.json"
METRICS = ("final_test_acc", "test_acc_at_best_val", "max_test_acc")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="hybrid_soft", choices=("hybrid_soft", "hybrid_optimal"))
    parser.add_argument("--alphas", type=float, nargs="+", default=list(ALPHAS))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--width", type=float, default=0.25, help="width_factor of the network (1: SoftHebb's)")
    parser.add_argument("--limit-train", type=int, default=2500)
    parser.add_argument("--limit-test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3, help="end-to-end epochs")
    parser.add_argument("--source", choices=("full", "subset"), default="full",
                        help="full: real CIFAR-10 from $HEBBLIB_DATA (or --data); subset: the shipped subset")
    parser.add_argument("--data", default=None, metavar="ROOT")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", default=str(ROOT / "runs" / "alpha_sweep"))
    parser.add_argument("--json", default=str(DEFAULT_JSON))
    parser.add_argument("--figure", default=None, help="default: --json with .png")
    return parser.parse_args(argv)


def sweep(args) -> dict:
    started = time.perf_counter()
    load_before = os.getloadavg()
    rows = []
    for alpha in args.alphas:
        change = {"model": {"width_factor": args.width}, "supervised": {"alpha": alpha}}
        preset = change_preset(get_preset(args.preset), change)  # checked before anything runs
        runs = []
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            result = run_preset(preset, seed=seed, root=args.data, source=args.source, device=args.device,
                                quick=False, limit_train=args.limit_train, limit_test=args.limit_test,
                                supervised_epochs=args.epochs, out=args.out, progress=False, notice=print)
            seconds = sum(e["seconds"] for e in result["epochs"])
            runs.append({"seed": seed, **{m: result[m] for m in METRICS}, "best_val_epoch": result["best_val_epoch"],
                         "train_images_per_s": result["data"]["n_train"] * len(result["epochs"]) / seconds,
                         "epoch_seconds": [e["seconds"] for e in result["epochs"]],
                         "grad_norms_last_epoch": result["epochs"][-1].get("grad_norms"),
                         "history": [{k: v for k, v in e.items() if k != "grad_norms"} for e in result["epochs"]],
                         "reused": bool(result.get("reused")), "wall_s": time.perf_counter() - t0,
                         "run_dir": os.path.relpath(result["run_dir"], ROOT)})
            print(f"α = {alpha:.2f}, seed {seed}: final {result['final_test_acc']:.2f} %, at best val "
                  f"{result['test_acc_at_best_val']:.2f} %  ({runs[-1]['train_images_per_s']:.1f} img/s"
                  f"{', read back' if result.get('reused') else ''})", flush=True)
        rows.append({"alpha": alpha, **{m: mean_std([r[m] for r in runs]) for m in METRICS}, "runs": runs,
                     "change": change})
    return {"rows": rows, "data": result["data"], "wall_s": time.perf_counter() - started,
            "load_before": load_before, "load_after": os.getloadavg()}


def draw(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alphas = [row["alpha"] for row in record["alphas"]]
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    for metric, label, colour, shift in (("final_test_acc", "final epoch", "tab:blue", -0.008),
                                         ("test_acc_at_best_val", "at the best-validation epoch", "tab:orange", 0.008)):
        means = [row[metric]["mean"] for row in record["alphas"]]
        stds = [row[metric]["std"] for row in record["alphas"]]
        ax.errorbar([a + shift for a in alphas], means, yerr=stds, fmt="o-", color=colour, capsize=4,
                    label=f"{label} (mean ± sample std)")
        for row in record["alphas"]:
            ax.plot([row["alpha"] + shift] * len(row[metric]["values"]), row[metric]["values"], ".",
                    color=colour, alpha=0.45, ms=5)
    ax.axhline(10, color="grey", lw=0.8, ls=":", label="chance")
    ax.set_xticks(alphas)
    ax.set_xlabel("α   (0: backprop,  1: Hebbian updates + backprop head)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{record['preset']}: α-hybrid, {record['n_seeds']} seeds (dots)", fontsize=10)
    ax.legend(fontsize=7.5, loc="best")
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    fig.text(0.01, 0.01, textwrap.fill(record["setting"], 110), fontsize=6.5, va="bottom", color="dimgrey")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = sweep(args)
    rows = out["rows"]
    data = out["data"]
    setting = (f"{args.source} CIFAR-10: first {args.limit_train:,} training images ({data['n_train']:,} train / "
               f"{data['n_val']:,} validation), first {data['n_test']:,} test images; "
               f"{args.epochs} end-to-end epochs (Adam 1e-3, batch 64, flips); width_factor {args.width:g}")
    command = "python scripts/alpha_sweep.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    record = {
        "title": f"Chapter 14: the α-hybrid sweep ({args.preset}, reduced setting)",
        "rows": {},  # no published figure (the thesis never ran α < 1): no row in the full-data table
        "preset": args.preset, "setting": setting, "alphas": rows, "n_seeds": args.seeds,
        "epochs": args.epochs, "width_factor": args.width, "limit_train": args.limit_train,
        "limit_test": args.limit_test, "source": args.source, "data": data,
        "device": describe_device(get_device(args.device)), "cpu_model": cpu_model(),
        "threads": torch.get_num_threads(), "torch_version": torch.__version__,
        "wall_s": out["wall_s"], "load_average_before": out["load_before"], "load_average_after": out["load_after"],
        "command": command.strip(),
    }
    json_path = Path(args.json)
    write_json(json_path, record)
    figure = Path(args.figure) if args.figure else json_path.with_suffix(".png")
    draw(record, figure)
    print(f"\n{record['title']}\n{setting}")
    for row in rows:
        f, b = row["final_test_acc"], row["test_acc_at_best_val"]
        print(f"  α = {row['alpha']:.2f}: final {f['mean']:.2f} ± {f['std']:.2f} %, at best val "
              f"{b['mean']:.2f} ± {b['std']:.2f} %  (seeds {', '.join(f'{v:.2f}' for v in f['values'])})")
    print(f"wall time {out['wall_s'] / 60:.1f} min on {record['device']} ({record['cpu_model']}, "
          f"{record['threads']} threads; load average before {out['load_before'][0]:.1f}); "
          f"wrote {os.path.relpath(json_path, ROOT)} and {os.path.relpath(figure, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
