"""What chapter 6's one-layer Krotov–Hopfield figure depends on: a small ablation on a real subset.

    python scripts/ch06_ablation.py [--train 10000] [--variants unit randn random unit_crop unit_ep3]

Each variant trains Manzali's one-layer net (``ch06.one_layer_net``) on the first ``--train`` images of
the 45,000-image training split, then reads it out with ``ch06.manzali_classifier`` for 10 epochs (the
end of the first cosine cycle) on the 5,000 validation / 10,000 test images of all of CIFAR-10:

* ``unit``: unit-norm init, 1 Hebbian epoch, read-out on cached features (``augment='none'``);
* ``randn``: biopytorch's N(0, 1) init, otherwise as ``unit``;
* ``random``: unit-norm init, no Hebbian training (the random-filter baseline);
* ``unit_crop``: as ``unit`` with Manzali's random crops + flips in the read-out;
* ``unit_ep3``: as ``unit`` with 3 Hebbian epochs.

One line per variant: Hebbian epochs run, sphere distance, min/median/max filter norm, final and
best-validation test accuracy, wall time. One thread per run (run several at once on a 2-core machine).
Needs the full CIFAR-10 under the data root (``HEBBLIB_DATA``).
"""
from __future__ import annotations

import argparse
import time

import torch

VARIANTS = ("unit", "randn", "random", "unit_crop", "unit_ep3")


def run_variant(variant: str, n_train: int) -> str:
    from hebblib.chapters import ch06_krotov_hopfield as ch6

    train, val, test = ch6.load_data("full")
    subset = train.split(val_fraction=1 - n_train / len(train), seed=0)[0] if n_train < len(train) else train
    start = time.perf_counter()
    net = ch6.one_layer_net(0, init="randn" if variant == "randn" else "unit_norm")
    layer = net.stages[0].conv
    epochs = 0 if variant == "random" else (3 if variant == "unit_ep3" else 1)
    history = ch6.train_krotov_layer(net, subset, epochs, seed=0) if epochs else []
    norms = layer.weight.detach().flatten(1).norm(dim=1)
    result = ch6.manzali_classifier(net, (subset, val, test), epochs=10,
                                    augment="crop_flip" if variant == "unit_crop" else "none")
    return (f"{variant:9s} n={len(subset)} hebbian_epochs={history[-1]['epoch'] if history else 0} "
            f"distance={ch6.sphere_distance(layer):.3f} norms {norms.min():.2f}/{norms.median():.2f}/{norms.max():.2f} "
            f"final {result['final_test_acc']:.2f} at-best-val {result['test_acc_at_best_val']:.2f} "
            f"({time.perf_counter() - start:.0f} s)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=10_000, help="training images (of the 45,000-image split)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for variant in args.variants:
        print(run_variant(variant, args.train), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
