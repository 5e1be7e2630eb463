"""Where in a trained network bf16 products cost precision: the features of a finished run's Hebbian network
(its ``unsupervised.pt``, nothing trained) with bf16 products in every subset of its Hebbian layers, each
against fp32, on the first test images.

    python scripts/bf16_layer_error.py runs/seeds/soft/full-n50000-c2355862/seed0 --images 400 --threads 1

Prints, per subset, the mean over images of ‖f_bf16 − f_fp32‖ / ‖f_fp32‖ of the flattened features. The layers
set here are forced (``compute_dtype``), so a layer below ``hebblib.update.BF16_MIN_FAN_IN`` computes fp32
unless the rule is set aside, which this script does (as the first bf16 path computed).
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def measure(run_dir: Path, images: int = 400, root=None, ignore_fan_in: bool = True) -> list[dict]:
    import torch

    import hebblib.layers as layers_module
    from hebblib import training
    from hebblib.layers import hebbian_modules
    from hebblib.results import load_checkpoint
    from hebblib.runtime import flush_denormals

    record = training.finished_linear_record(run_dir)
    checkpoint = load_checkpoint(run_dir / "unsupervised.pt", record["config_hash"])
    if checkpoint is None:
        raise FileNotFoundError(f"{run_dir}: no unsupervised.pt written for this run")
    run = training.plan_like(record, root=root, out=None, precision="fp32", resume=False)
    training.prepare_data(run, notice=None)
    model = training.initial_model(run)
    model.load_state_dict(checkpoint["model"])
    model.eval()
    names, layers = list(model.hebbian_layers()), hebbian_modules(model)
    x = run.test.get(torch.arange(min(images, len(run.test))))[0]
    floor = layers_module.BF16_MIN_FAN_IN
    if ignore_fan_in:  # every chosen layer in bf16, however small (what the first bf16 path did)
        layers_module.BF16_MIN_FAN_IN = 0

    def features(mask):
        for layer, low in zip(layers, mask):
            layer.compute_dtype = torch.bfloat16 if low else torch.float32
        with torch.no_grad(), flush_denormals():
            return model.features(x).flatten(1).double()

    try:
        reference = features((False,) * len(layers))
        rows = []
        for mask in itertools.product((False, True), repeat=len(layers)):
            if any(mask):
                f = features(mask)
                error = ((f - reference).norm(dim=1) / reference.norm(dim=1)).mean().item()
                rows.append({"bf16_layers": [n for n, m in zip(names, mask) if m], "relative_error": error})
    finally:
        layers_module.BF16_MIN_FAN_IN = floor
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="the seed folder of a finished run (…/seedK)")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--data", metavar="ROOT", default=None, help="data root (default $HEBBLIB_DATA)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    for row in measure(args.run, args.images, args.data or os.environ.get("HEBBLIB_DATA")):
        print(f"bf16 in {', '.join(row['bf16_layers']):20s} mean relative feature error {row['relative_error']:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
