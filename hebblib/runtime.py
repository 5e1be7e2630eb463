"""Device, seed and quick-mode helpers shared by the library and every chapter."""
from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

QUICK_ENV = "HEBBLIB_QUICK"


def is_quick() -> bool:
    """True when ``HEBBLIB_QUICK`` is set to a true value (1, true, yes): small data, few epochs."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def quick_or(full, quick):
    """Pick the quick-mode value when ``HEBBLIB_QUICK=1``, else the full one."""
    return quick if is_quick() else full


def get_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when present (or asked for), else CPU. An unknown or unavailable device is a clear error."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type not in {"cpu", "cuda", "mps"}:
        raise ValueError(f"unknown device {device!r}; valid choices: 'auto', 'cpu', 'cuda'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but this machine has no CUDA GPU; use 'cpu' or 'auto'")
    return dev


def seed_everything(seed: int = 0, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and torch; on CPU the runs are then bit-for-bit repeatable.

    Returns a ``torch.Generator`` seeded with ``seed`` for code that wants its own stream.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return torch.Generator().manual_seed(seed)


def describe_device(device: torch.device | None = None) -> str:
    """One line naming the device, for notebooks and result files."""
    device = get_device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


@contextlib.contextmanager
def single_thread():
    """Run tiny-tensor loops on one thread: with a few numbers per op, waking more threads costs far
    more than it saves (10x on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def flush_denormals():
    """Treat subnormal floats (|x| < 1.2e-38) as 0 on the CPU for the duration (off again afterwards:
    PyTorch's default). Backprop through a softmax with a wide logit gap makes the gradients of the
    losing classes subnormal; on the CPU every operation on them is microcoded, and the end-to-end
    `backprop` preset trained 3-4x slower from its second epoch on. Values that small change nothing
    a float32 network can resolve."""
    supported = torch.set_flush_denormal(True)
    try:
        yield supported
    finally:
        torch.set_flush_denormal(False)
