"""How closely does a data-parallel Hebbian phase follow one process? Check it on your machine.

    python benchmarks/distributed_agreement.py                               # CPU, gloo, 2 processes
    python benchmarks/distributed_agreement.py --device cuda --processes 4   # 4 GPUs, NCCL

N processes (spawned, one per device on CUDA) train ``--steps`` global batches of ``--batch`` images of the shipped
CIFAR-10 subset (standardised) on their shards, as ``torchrun -m hebblib reproduce`` does; one process trains the
same global batches alone. Printed per preset and precision: the largest difference of the N-process state from
the one-process state, relative to the largest entry of each tensor, over the weights and over every tensor of
the state (BatchNorm running statistics, BCM θ, histories, thresholds, win counts); and, for scale, how far one
process moves when only the order of its BatchNorm sums changes (``reduced_batch_norm`` in one process instead
of torch's kernel: the same maths, other roundings) and how far its bf16 run is from its fp32 one.
tests/test_distributed.py asserts the fp32 agreement (CPU, 2 processes).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from torch.nn.modules.batchnorm import _BatchNorm  # noqa: E402

from hebblib.distributed import BatchReducer, _reduced_forward  # noqa: E402

PRESETS = ("soft", "optimal", "temporal", "adaptive")


def train(preset, width, precision, images, batch, device, reducer=None):
    from hebblib.data import DeviceDataset, load_cifar
    from hebblib.presets import build_model, get_preset
    from hebblib.training import train_hebbian

    config = get_preset(preset)
    config["model"]["width_factor"] = width
    torch.manual_seed(0)
    model = build_model(config).to(device)
    x, y = load_cifar(True, source="subset")
    data = DeviceDataset(x[:images], y[:images], "standardize", augment=True, device=device)
    train_hebbian(model, data, batch_size=batch, generator=torch.Generator().manual_seed(1), progress=False,
                  precision=precision, reducer=reducer)
    return {k: v.cpu() for k, v in model.state_dict().items()}


def worker(rank, world, port, args, out):
    from hebblib.distributed import DistributedReducer

    torch.set_num_threads(args.threads)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    device = torch.device("cuda", rank) if args.device == "cuda" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    try:
        for preset in args.presets:
            for precision in args.precisions:
                state = train(preset, args.width, precision, args.steps * args.batch, args.batch, device,
                              DistributedReducer())
                if rank == 0:
                    torch.save(state, out / f"{preset}-{precision}.pt")
    finally:
        dist.destroy_process_group()


class ReorderedBatchNorm(BatchReducer):
    """One process whose BatchNorms compute through ``reduced_batch_norm``: only the float sums' order changes."""

    def attach(self, model):
        self.norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
        for m in self.norms:
            m.forward = _reduced_forward(m, self)

    def detach(self, model):
        for m in self.norms:
            m.__dict__.pop("forward")


def difference(a: dict, b: dict, only_weights: bool = False) -> float:
    worst = 0.0
    for key, ref in b.items():
        if ref.is_floating_point() and ref.numel() and (key.endswith("weight") or not only_weights):
            worst = max(worst, float((a[key] - ref).abs().max() / ref.abs().max().clamp_min(1e-12)))
    return worst


def main() -> None:
    from hebblib.distributed import free_port
    from hebblib.runtime import cpu_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--precisions", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"])
    parser.add_argument("--width", type=float, default=0.125, help="width_factor of the networks (default 1/8)")
    parser.add_argument("--steps", type=int, default=4, help="global batches (default 4)")
    parser.add_argument("--batch", type=int, default=16, help="global batch size (default 16)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp())
    mp.start_processes(worker, args=(args.processes, free_port(), args, out), nprocs=args.processes,
                       start_method="spawn")
    torch.set_num_threads(args.threads)
    device = "cuda" if args.device == "cuda" else "cpu"
    rows = []
    print(f"{args.processes} processes against 1 ({args.device}{'' if args.device == 'cuda' else ', ' + cpu_model()}; "
          f"torch {torch.__version__}): {args.steps} global batches of {args.batch} subset images, width_factor "
          f"{args.width:g}, {args.threads} thread(s) per process; max |state_N − state_1| / max |state_1| per tensor")
    print(f"  {'preset':<10} {'precision':<9} {'weights':>9} {'any state':>10} {'1 process, BN reordered':>24} "
          f"{'bf16 vs fp32, 1 process':>24}    (all but 'any state': the weights)")
    for preset in args.presets:
        alone = {p: train(preset, args.width, p, args.steps * args.batch, args.batch, device) for p in args.precisions}
        for precision in args.precisions:
            state = torch.load(out / f"{preset}-{precision}.pt")
            reordered = train(preset, args.width, precision, args.steps * args.batch, args.batch, device,
                              ReorderedBatchNorm())
            row = {"preset": preset, "precision": precision,
                   "weights": difference(state, alone[precision], only_weights=True),
                   "reordered_batchnorm": difference(reordered, alone[precision], only_weights=True),
                   "state": difference(state, alone[precision]),
                   "bf16_vs_fp32": (difference(alone["bf16"], alone["fp32"], only_weights=True)
                                    if precision == "bf16" and "fp32" in alone else None)}
            rows.append(row)
            scale = "" if row["bf16_vs_fp32"] is None else f"{row['bf16_vs_fp32']:.1e}"
            print(f"  {preset:<10} {precision:<9} {row['weights']:9.1e} {row['state']:10.1e} "
                  f"{row['reordered_batchnorm']:24.1e} {scale:>24}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "cpu_model": cpu_model(),
                                               "torch": torch.__version__, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
