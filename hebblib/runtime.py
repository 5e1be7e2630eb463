"""Device, seed and quick-mode helpers shared by the library and every chapter."""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import platform
import random
import threading

import numpy as np
import torch

from .errors import check_choice

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


# ----- subnormal floats ------------------------------------------------------------------------------
# ``torch.set_flush_denormal`` sets the floating-point control register of the calling thread only. Torch's
# intra-op worker threads (OpenMP) copy it when they are created and never again, so the call alone leaves
# half the work of a 2-thread CPU on the slow subnormal path (or flushed long after it was switched off).
# ``flush_denormals`` therefore sets it on every intra-op thread, through the OpenMP runtime torch uses.
_SUBNORMAL = 1e-40  # below float32's smallest normal number, 1.18e-38
_flush_lock = threading.Lock()
_flush_depth = 0  # nesting depth of flush_denormals: only the outermost one restores the caller's state
_flush_restore = False  # the caller's state, read when the outermost flush_denormals began
_OMP_BODY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_omp_cache: list = []


def _openmp_runtime():
    """The OpenMP runtime of torch's intra-op threads, as a ctypes library with ``GOMP_parallel`` (libgomp,
    and LLVM's and Intel's runtimes, which export it too), or None where none is found (other parallel
    backends; platforms without ``/proc/self/maps``)."""
    if _omp_cache:
        return _omp_cache[0]
    runtime = None
    try:
        if "OpenMP" in torch.__config__.parallel_info():
            with open("/proc/self/maps") as maps:
                paths = sorted({line.split()[-1] for line in maps if line.rstrip().endswith(".so")
                                or ".so." in line.rsplit("/", 1)[-1]})
            for path in paths:
                name = os.path.basename(path)
                if any(tag in name for tag in ("gomp", "libomp", "iomp5")):
                    library = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0))
                    if hasattr(library, "GOMP_parallel"):
                        library.GOMP_parallel.argtypes = [_OMP_BODY, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
                        library.GOMP_parallel.restype = None
                        runtime = library
                        break
    except OSError:
        runtime = None
    _omp_cache.append(runtime)
    return runtime


def on_every_thread(fn) -> tuple[list, bool]:
    """``(results, covered)``: ``fn()`` called on this thread and on each of torch's intra-op threads.
    ``covered`` is False where the worker threads could not be reached (then only this thread ran it)."""
    results = [fn()]
    threads = torch.get_num_threads()
    if threads <= 1:
        return results, True
    runtime = _openmp_runtime()
    if runtime is None:
        return results, False
    errors = []

    def body(_):
        try:
            results.append(fn())
        except BaseException as err:  # noqa: BLE001 - an exception cannot cross the C callback
            errors.append(err)

    runtime.GOMP_parallel(_OMP_BODY(body), None, threads, 0)
    if errors:
        raise errors[0]
    return results, True


def _this_thread_flushes() -> bool:
    # float32 arithmetic in this thread: under flush-to-zero the subnormal input (and result) reads as 0
    return bool(np.float32(_SUBNORMAL) * np.float32(1.0) == 0)


def denormals_flushed() -> bool:
    """True when subnormal floats count as 0 on this thread and on every intra-op thread of torch."""
    states, covered = on_every_thread(_this_thread_flushes)
    return covered and all(states)


def set_flush_denormal_everywhere(enabled: bool) -> bool:
    """``torch.set_flush_denormal(enabled)`` on this thread and every intra-op thread; True if supported."""
    supported, _ = on_every_thread(lambda: torch.set_flush_denormal(bool(enabled)))
    return all(supported)


@contextlib.contextmanager
def flush_denormals():
    """Treat subnormal floats (|x| < 1.2e-38) as 0 on the CPU for the duration, on every thread, then
    restore the caller's state (that of the calling thread when the outermost ``flush_denormals`` began;
    nested uses restore nothing). Usable as a decorator. Yields whether the CPU supports it.

    Why: on the CPU every operation on a subnormal is microcoded, tens of times slower. The soft
    winner-take-all's factors underflow (the update of SoftHebb's first batches ran 4-8x slower), and so
    do backprop's gradients through a softmax with a wide logit gap (the end-to-end ``backprop`` preset
    trained 3-4x slower from its second epoch on). Values that small change nothing a float32 network can
    resolve. PyTorch has no getter for the state, so it is read by a float32 probe.

    The first use also makes the CPU allocator keep freed memory (:func:`keep_freed_memory`), the other
    kernel-level stall of these loops: every phase that flushes subnormals runs with it."""
    global _flush_depth, _flush_restore
    keep_freed_memory()
    with _flush_lock:
        if _flush_depth == 0:
            _flush_restore = _this_thread_flushes()
        _flush_depth += 1
        try:
            supported = set_flush_denormal_everywhere(True)
        except BaseException:
            _flush_depth -= 1
            raise
    try:
        yield supported
    finally:
        with _flush_lock:
            _flush_depth -= 1
            if _flush_depth == 0:
                set_flush_denormal_everywhere(_flush_restore)


def denormals_flushable() -> bool:
    """Whether :func:`flush_denormals` takes effect here: on this CPU, and on every intra-op thread."""
    with flush_denormals():
        return denormals_flushed()


# ----- precision ------------------------------------------------------------------------------------------
PRECISIONS = ("auto", "fp32", "bf16")
PRECISION_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# oneDNN's instruction-set levels, lowest first (ONEDNN_MAX_CPU_ISA caps what it uses); aliases included
_ONEDNN_ISAS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
                "AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_FP16", "AVX10_1_512_AMX", "AVX512_CORE_AMX",
                "AVX10_1_512_AMX_FP16", "AVX512_CORE_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2")
_AMX_LEVEL = _ONEDNN_ISAS.index("AVX10_1_512_AMX")


def cpu_flags() -> frozenset:
    """The CPU's feature flags as the kernel reports them (``/proc/cpuinfo``; empty where unreadable)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


# the flags of CPUs with bf16 arithmetic instructions: x86 AVX512-BF16 and AMX-BF16, Arm's BF16 extension
BF16_INSTRUCTION_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def cpu_has_bf16_instructions(flags=None) -> bool:
    """Whether the CPU has any bf16 arithmetic instructions (:data:`BF16_INSTRUCTION_FLAGS`). Without them
    PyTorch's bf16 matrix products run a generic loop, about a hundredth of fp32's speed (docs/performance.md).
    Says nothing about speed otherwise (see :func:`fast_bf16`). ``flags`` replaces :func:`cpu_flags` (tests)."""
    flags = cpu_flags() if flags is None else frozenset(flags)
    return any(flag in flags for flag in BF16_INSTRUCTION_FLAGS)


# the CPU flags that decide how fast this library's kernels run (named by the bench and the run records)
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
               "amx_fp16", "amx_int8", "asimd", "sve", "bf16")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_cpu() -> dict:
    """The CPU a timing was taken on, for result files: ``{"model": ..., "flags": [...]}`` (the
    :data:`SPEED_FLAGS` it has, in that order)."""
    flags = cpu_flags()
    return {"model": cpu_model(), "flags": [flag for flag in SPEED_FLAGS if flag in flags]}


def onednn_isa_cap() -> str | None:
    """The instruction-set cap set through ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``), upper case."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return cap.strip().upper() if cap else None


@dataclasses.dataclass(frozen=True)
class Precision:
    """What a run computes in: ``requested`` (fp32, bf16 or auto), ``name`` (fp32 or bf16) and ``reason``."""

    requested: str
    name: str
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        return PRECISION_DTYPES[self.name]

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_precision(precision) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else one clear error listing them."""
    check_choice("precision", precision, PRECISIONS)
    return precision


def fast_bf16(device=None, *, flags=None, cuda_bf16: bool | None = None, isa_cap: str | None = None) -> tuple:
    """``(fast, why)``: whether ``device`` computes bf16 matrix products natively and much faster than fp32.

    CPU: AMX-BF16 (``amx_bf16`` with ``amx_tile``; Intel Sapphire Rapids and later), measured 4-6x the fp32
    matrix product on 2 cores. ``avx512_bf16`` alone (Cooper Lake, AMD Zen 4) is not counted: with oneDNN
    capped there (``ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16``) bf16 products and convolutions ran slower than fp32
    on the same machine (docs/performance.md). An ``ONEDNN_MAX_CPU_ISA`` below AMX counts as no AMX.
    CUDA: ``torch.cuda.is_bf16_supported`` without emulation (compute capability 8.0 and later).
    ``flags``, ``cuda_bf16`` and ``isa_cap`` replace what is read from the machine (for tests)."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        if cuda_bf16 is None:
            try:
                cuda_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
            except TypeError:  # older torch: no emulation argument
                cuda_bf16 = torch.cuda.is_bf16_supported()
        name = torch.cuda.get_device_name(device) if torch.cuda.is_available() else "the CUDA device"
        return (True, f"{name} computes bf16 natively") if cuda_bf16 else (
            False, f"{name} has no native bf16 (compute capability below 8.0)")
    if device.type != "cpu":
        return False, f"no bf16 fast path on {device.type}"
    flags = cpu_flags() if flags is None else frozenset(flags)
    cap = onednn_isa_cap() if isa_cap is None else (isa_cap.upper() or None)
    if "amx_bf16" in flags and "amx_tile" in flags:
        if cap and cap != "ALL" and cap in _ONEDNN_ISAS and _ONEDNN_ISAS.index(cap) < _AMX_LEVEL:
            return False, f"the CPU has AMX-BF16 but ONEDNN_MAX_CPU_ISA={cap} keeps oneDNN from using it"
        return True, "the CPU has AMX-BF16 (amx_bf16, amx_tile)"
    if "avx512_bf16" in flags:
        return False, ("the CPU has avx512_bf16 but no AMX: bf16 measured no faster than fp32 there "
                       "(docs/performance.md)")
    if cpu_has_bf16_instructions(flags):
        return False, "the CPU has bf16 instructions (Arm bf16) but no AMX: bf16 not measured faster than fp32 there"
    return False, "the CPU has no bf16 arithmetic (none of the flags amx_bf16, avx512_bf16, bf16)"


def resolve_precision(precision: str = "auto", device=None, **detect) -> Precision:
    """The precision a run uses. ``auto``: bf16 where :func:`fast_bf16` finds the hardware fast at it, else
    fp32; ``fp32``/``bf16``: as asked (bf16 where it is slow is allowed and said so). ``detect``: see
    :func:`fast_bf16`."""
    check_precision(precision)
    fast, why = fast_bf16(device, **detect)
    if precision == "auto":
        return Precision("auto", "bf16" if fast else "fp32", why)
    if precision == "bf16" and not fast:
        return Precision("bf16", "bf16", f"asked for; slow here: {why}")
    return Precision(precision, precision, "asked for")


# ----- the CPU allocator ----------------------------------------------------------------------------------
# glibc's malloc returns every large block (from 128 KiB up, its threshold rising only to 32 MiB) to the kernel
# with munmap when it is freed, and trims the top of the heap likewise. A training step allocates and frees
# tensors of tens of MB many times, so the kernel zero-fills fresh pages on every first touch: a whole
# `soft` run on 2 cores spent 332 of its 1,507 CPU seconds in the kernel on 163 million page faults. Kept
# for reuse instead, the same feature extraction took 0.1 s of system time instead of 1.3 s (docs/performance.md).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
KEEP_MEMORY_ENV = "HEBBLIB_KEEP_MEMORY"
_allocator_state: str | None = None


def keep_freed_memory() -> str:
    """Make glibc's malloc keep freed memory for reuse in this process (the largest mmap threshold it allows,
    32 MiB; no trimming; 1 GiB of top padding), once per process; the process's resident memory then stays
    near its peak instead of going back to the kernel. ``HEBBLIB_KEEP_MEMORY=0`` turns it off. Returns what
    was done, for the run's record: ``'kept'``, ``'off (HEBBLIB_KEEP_MEMORY=0)'`` or why it does not apply
    (not glibc). The values the program computes are the same either way."""
    global _allocator_state
    if _allocator_state is not None:
        return _allocator_state
    if os.environ.get(KEEP_MEMORY_ENV, "").strip().lower() in {"0", "false", "no", "off"}:
        _allocator_state = f"off ({KEEP_MEMORY_ENV}=0)"
        return _allocator_state
    try:
        libc = ctypes.CDLL(None)
        mallopt, version = libc.mallopt, libc.gnu_get_libc_version
    except (OSError, AttributeError):
        _allocator_state = "not glibc: the allocator is left as it is"
        return _allocator_state
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    done = [mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024), mallopt(_M_TRIM_THRESHOLD, 2**31 - 1),
            mallopt(_M_TOP_PAD, 1 << 30)]
    _allocator_state = "kept" if all(done) else "glibc refused mallopt: the allocator is left as it is"
    return _allocator_state


# ----- fused forward passes (torch.compile) ---------------------------------------------------------------
# A Hebbian step is a few matrix products and many passes over activity maps of tens of MB each (the soft
# competition's softmax, the rule's factors, layout and dtype copies, pooling): on a 2-core CPU those passes,
# not the arithmetic, set the pace (docs/performance.md). torch.compile fuses them into a few loops (inductor:
# C++ on the CPU, Triton on CUDA). The values are those of the eager code up to rounding (fp32 ΔW within
# 3e-6 relative; tests/test_compile.py); the first batch of each shape pays the compilation (about 40 s on
# 2 cores for the soft net), so only batches of the common size go through it and the last, shorter batch
# of an epoch runs eagerly.
COMPILE_ATTRIBUTE = "_hebblib_compiled_features"
COMPILE_LIMIT = 256  # compilations of features() per process before torch falls back to eager


def compile_problem(device=None) -> str | None:
    """Why ``torch.compile`` can't fuse the forward pass on ``device`` here (None when it can): inductor
    needs a C++ compiler for the CPU and Triton for CUDA."""
    import shutil

    device = torch.device(device) if device is not None else torch.device("cpu")
    if not hasattr(torch, "compile"):
        return f"this torch ({torch.__version__}) has no torch.compile"
    if device.type == "cpu":
        compiler = os.environ.get("CXX") or "c++"
        if not (shutil.which(compiler) or shutil.which("g++") or shutil.which("clang++")):
            return "no C++ compiler (c++, g++ or clang++) on the PATH, which torch.compile needs on the CPU"
        return None
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return "Triton is not installed, which torch.compile needs on CUDA"
        return None
    return f"no torch.compile path for device type {device.type!r}"


def compiled_features(model, batch_size: int):
    """``model.features`` fused by ``torch.compile`` for batches of ``batch_size`` images; any other batch (the
    last of an epoch) runs the eager ``model.features``. The compiled function is kept on the model, so later
    calls (the next epoch, each split's features) reuse what was compiled; training and evaluation mode and
    each precision compile once each."""
    owner, compiled = model.__dict__.get(COMPILE_ATTRIBUTE, (None, None))
    if owner != id(model):  # none yet, or a copy's (copy.deepcopy keeps the attribute, bound to the original)
        # every network's features() shares one code object, whose compilations torch counts together: each
        # model, mode and precision is one, so a notebook or a process of several seeds would pass torch's
        # default limit (8) and silently run eagerly from then on
        config = torch._dynamo.config
        for limit in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                      "accumulated_cache_size_limit"):
            if hasattr(config, limit):
                setattr(config, limit, max(getattr(config, limit), COMPILE_LIMIT))
        # shapes static at first; a buffer that grows (the temporal competition's history) turns dynamic at
        # its first recompilation instead of compiling anew every step
        compiled = torch.compile(model.features)
        model.__dict__[COMPILE_ATTRIBUTE] = (id(model), compiled)

    def forward(x, **kwargs):
        return compiled(x, **kwargs) if x.shape[0] == batch_size else model.features(x, **kwargs)

    return forward
