"""Beyond one process: the Hebbian phase data-parallel on ``torch.distributed``, and seed sweeps in parallel.

    torchrun --nproc_per_node=2 -m hebblib reproduce --preset soft          # one run, 2 processes
    python -m hebblib reproduce --preset soft --seeds 3 --parallel 3         # 3 runs at once

**Why data parallelism is exact.** A Hebbian update is a sum over the batch,

    ΔW = Σ_{n,p} r[n,o,p] · x_patch[n,p] − (Σ_{n,p} s[n,o,p]) · W[o]  =  Σ_k ΔW_k

where ΔW_k is the same expression over the images of process k. Each process takes its shard of every global
batch (a contiguous block, so the shards in rank order are the batch in its order), computes ΔW_k, and an
all-reduce (sum) gives every process ΔW *before* the normalisation ΔW / max|ΔW|: the maximum of the sum is
not the maximum of the partial maxima, so the max is never reduced, the sum is. Every other quantity that
sees the whole batch goes through the module's ``reducer`` the same way:

    quantity                                  reduced as                             code
    ΔW (Hebbian and decay term)               sum, before normalise_update           layers._accumulate_update
    win counts                                sum (in the same call)                 layers._accumulate_update
    BCM θ: mean_{n,p} y²                      sum of y² and of the count             rules.BCM.factors
    adaptive θ: mean_{n,p} firing             sum of the firings and of the count    competitions.AdaptiveThreshold
    temporal history: the last samples of u   all-gather in rank (= batch) order     competitions.TemporalCompetition
    BatchNorm (training): mean, var, running  sum and count, two passes              reduced_batch_norm (here)
      statistics

Needing no reduction: the statistical threshold (mean + k·std over the *units* of one sample and position),
the Triangle (mean over channels), surround inhibition, per-sample standardisation, presynaptic competition
and Dale (per weight). A rule or competition of your own that reduces over the batch must do it through
``self.reducer`` (the identity :data:`LOCAL` in one process) or a data-parallel run will silently differ.

The rest of a run: features are computed by each process for its block of every split and all-gathered;
the linear probe is data-parallel (each process its rows of every global batch, the head's gradient summed)
with the dropout masks drawn for the whole global batch from the same seeded stream in every process; only
rank 0 writes checkpoints and results, and a run resumes from them like a one-process run (same folder,
same key). See docs/distributed.md.
"""
from __future__ import annotations

import contextlib
import os
import time

import torch
import torch.distributed as dist

from .data.device_dataset import epoch_draws

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class BatchReducer:
    """The reductions over a batch when one process holds all of it: every one is the identity.

    This is :data:`LOCAL`, the default ``reducer`` of every rule, competition and Hebbian layer; a
    :class:`DistributedReducer` replaces it while a model trains data-parallel (:meth:`attach`)."""

    distributed = False
    rank, world_size = 0, 1

    def sum(self, *tensors):
        """Σ over the processes of each tensor (None passes through); one tensor in, one out."""
        return tensors if len(tensors) > 1 else tensors[0]

    def sum_and_count(self, total: torch.Tensor, count: int):
        """``(Σ total, Σ count)`` over the processes: the numerator and denominator of a batch mean."""
        return total, count

    def mean(self, total: torch.Tensor, count: int) -> torch.Tensor:
        """``Σ total / Σ count``: a mean over the whole global batch from each process's partial sum."""
        total, count = self.sum_and_count(total, count)
        return total / count

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """The tensors of all processes concatenated along dim 0 in rank order (= the global batch's order)."""
        return tensor

    def total(self, number: int) -> int:
        """An integer summed over the processes (images seen, ...)."""
        return number

    def rows(self, n: int) -> slice:
        """This process's rows of a global batch of ``n``: a contiguous block (sizes differ by at most 1)."""
        return slice(n * self.rank // self.world_size, n * (self.rank + 1) // self.world_size)

    def batches(self, data, batch_size: int, *, shuffle: bool = True, augment: bool | None = None,
                generator: torch.Generator | None = None):
        """One epoch of this process's shards of the global batches of ``data`` (a ``DeviceDataset``)."""
        return data.batches(batch_size, shuffle=shuffle, augment=augment, generator=generator)

    def attach(self, model) -> None:
        """Route the model's batch reductions through this reducer (nothing to do in one process)."""

    def detach(self, model) -> None:
        """Undo :meth:`attach`."""

    def barrier(self) -> None:
        pass

    def broadcast_object(self, obj):
        """``obj`` as rank 0 has it (pickled), in every process."""
        return obj


LOCAL = BatchReducer()


class DistributedReducer(BatchReducer):
    """The reductions of a data-parallel run over the processes of ``group`` (default: the whole world).

    Every process runs the same code on its shard of each global batch; the reductions are collective calls,
    so every process must make the same calls in the same order (they do: same model, same batches, same
    branches). ``timed=True`` adds up the wall time spent in the collectives in ``seconds`` (waiting for the
    slowest process included), for the scaling bench."""

    distributed = True

    def __init__(self, group=None, *, timed: bool = False):
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError("DistributedReducer needs an initialised process group: launch with torchrun and "
                               "call hebblib.distributed.init_from_env() (or torch.distributed.init_process_group)")
        self.group = group
        self.rank, self.world_size = dist.get_rank(group), dist.get_world_size(group)
        self.backend = dist.get_backend(group)
        self.timed, self.seconds, self.calls = bool(timed), 0.0, 0
        self._patched = []

    def __repr__(self) -> str:
        return f"DistributedReducer(rank={self.rank}, world_size={self.world_size}, backend={self.backend!r})"

    def describe(self) -> dict:
        return {"world_size": self.world_size, "backend": self.backend}

    @contextlib.contextmanager
    def _collective(self, device=None):
        if not self.timed:
            yield
            return
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        yield
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)
        self.seconds += time.perf_counter() - start
        self.calls += 1

    # ----- the reductions ------------------------------------------------------------------------
    def sum(self, *tensors):
        """All-reduce (sum) of each tensor, in place; the calls are issued together and then waited for."""
        present = [t for t in tensors if t is not None]
        with self._collective(present[0].device if present else None):
            works = [dist.all_reduce(t, group=self.group, async_op=True) for t in present]
            for work in works:
                work.wait()
        return tensors if len(tensors) > 1 else tensors[0]

    def sum_and_count(self, total, count):
        packed = torch.cat([total.reshape(-1), total.new_tensor([float(count)])])
        with self._collective(packed.device):
            dist.all_reduce(packed, group=self.group)
        return packed[:-1].view_as(total), int(round(packed[-1].item()))

    def mean(self, total, count):
        # not through sum_and_count: the count stays on the device (no host sync per call)
        packed = torch.cat([total.reshape(-1), total.new_tensor([float(count)])])
        with self._collective(packed.device):
            dist.all_reduce(packed, group=self.group)
        return packed[:-1].view_as(total) / packed[-1]

    def gather(self, tensor):
        sizes = self._gather_sizes(tensor.shape[0], tensor.device)
        padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
        padded[: tensor.shape[0]] = tensor
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        with self._collective(tensor.device):
            dist.all_gather(parts, padded.contiguous(), group=self.group)
        return torch.cat([part[:size] for part, size in zip(parts, sizes)])

    def _gather_sizes(self, size: int, device) -> list[int]:
        mine = torch.tensor([size], device=device)
        sizes = [torch.zeros_like(mine) for _ in range(self.world_size)]
        dist.all_gather(sizes, mine, group=self.group)
        return [int(s.item()) for s in sizes]

    def total(self, number):
        return int(self.sum(torch.tensor([float(number)], dtype=torch.float64, device=self._device())).item())

    def _device(self):
        return torch.device("cuda", torch.cuda.current_device()) if self.backend == "nccl" else torch.device("cpu")

    def barrier(self):
        dist.barrier(group=self.group)

    def broadcast_object(self, obj):
        holder = [obj if self.rank == 0 else None]
        dist.broadcast_object_list(holder, src=0, group=self.group, device=self._device())
        return holder[0]

    def broadcast_module(self, module) -> None:
        """Rank 0's parameters and buffers in every process (in place), as DDP starts."""
        for tensor in module.state_dict().values():
            if tensor.numel():
                dist.broadcast(tensor, src=0, group=self.group)

    def any(self, flag: bool) -> bool:
        """True in every process when ``flag`` is true in any (an error in one must stop them all)."""
        return self.total(int(bool(flag))) > 0

    # ----- the shards -----------------------------------------------------------------------------
    def check_batch_size(self, batch_size: int, what: str = "batch_size") -> None:
        """A global batch must split evenly over the processes (one error naming both numbers)."""
        if batch_size % self.world_size:
            lower = batch_size - batch_size % self.world_size
            raise ValueError(f"the global {what} {batch_size} is not divisible by the number of processes "
                             f"{self.world_size} (WORLD_SIZE): each process takes batch_size / {self.world_size} "
                             f"images of every batch; use a multiple of {self.world_size} such as "
                             f"{max(lower, self.world_size)} or {lower + self.world_size}")

    def batches(self, data, batch_size, *, shuffle=True, augment=None, generator=None):
        """This process's block of every global batch of ``data.batches(batch_size, ...)``: the same order and
        flips as one process draws them from ``generator`` (every process draws the whole epoch's), then
        rows :meth:`rows` of each batch. The last batch may be smaller (its blocks then differ by one image,
        and a process may get none: the reductions still add up)."""
        self.check_batch_size(batch_size)
        return _shard_batches(data, batch_size, self, shuffle=shuffle, augment=augment, generator=generator)

    # ----- attaching to a model -----------------------------------------------------------------------
    def attach(self, model) -> None:
        """Set ``reducer`` of every module that declares one (rules, competitions, Hebbian layers) to this
        reducer, and make every BatchNorm normalise with the global batch's statistics while training."""
        from torch.nn.modules.batchnorm import _BatchNorm

        if self._patched:
            raise RuntimeError("this reducer is already attached to a model; detach it first")
        for module in model.modules():
            if hasattr(type(module), "reducer"):
                module.reducer = self
                self._patched.append((module, "reducer"))
            elif isinstance(module, _BatchNorm):
                module.forward = _reduced_forward(module, self)
                self._patched.append((module, "forward"))

    def detach(self, model) -> None:
        for module, name in self._patched:
            module.__dict__.pop(name, None)
        self._patched = []


def _reduced_forward(bn, reducer):
    def forward(x):
        return reduced_batch_norm(bn, x, reducer)

    return forward


def reduced_batch_norm(bn, x: torch.Tensor, reducer: BatchReducer) -> torch.Tensor:
    """``bn(x)`` with the statistics of the *global* batch in training mode (what one process holding the
    whole batch computes; torch's ``SyncBatchNorm`` does this on GPUs only), two passes for accuracy:

        mean = Σ x / n,   var = Σ (x − mean)² / n   (sums over every process's batch and positions)
        out  = (x − mean) / sqrt(var + eps),   running stats ← momentum blend of mean and var · n / (n − 1)

    In eval mode (or without batch statistics to take) it is ``bn``'s own forward."""
    if not (bn.training or bn.running_mean is None):
        return type(bn).forward(bn, x)
    bn._check_input_dim(x)
    dims = [0, *range(2, x.dim())]
    shape = (1, -1, *([1] * (x.dim() - 2)))
    count = x.numel() // x.shape[1]
    total, n = reducer.sum_and_count(x.sum(dims), count)
    mean = total / n
    centred = x - mean.view(shape)
    var = reducer.sum(centred.square().sum(dims)) / n  # biased, as batch norm normalises
    if bn.training and bn.track_running_stats and bn.running_mean is not None:
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
            bn.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
            bn.running_var.mul_(1 - factor).add_(var.detach() * (n / max(n - 1, 1)), alpha=factor)
    out = centred * torch.rsqrt(var + bn.eps).view(shape)
    if bn.affine:
        out = out * bn.weight.view(shape) + bn.bias.view(shape)
    return out


def _shard_batches(data, batch_size, reducer, *, shuffle=True, augment=None, generator=None):
    """The draws of ``DeviceDataset.batches`` (order, then flips, from ``generator``), each batch cut to the
    reducer's rows. tests/test_distributed.py checks that the blocks in rank order are ``data.batches``."""
    augment = data.augment if augment is None else augment
    n = len(data)
    order, flips = epoch_draws(n, data.device, generator, shuffle=shuffle, flip=augment)
    if order is None:
        order = torch.arange(n, device=data.device)
    for start in range(0, n, batch_size):
        index = order[start:start + batch_size]
        rows = reducer.rows(len(index))
        flip = flips[start:start + batch_size][rows] if flips is not None else None
        yield data.get(index[rows], flip)


# ----- the process group -----------------------------------------------------------------------------
def launched_by_torchrun() -> bool:
    """True in a process that ``torchrun`` (or another launcher setting RANK and WORLD_SIZE) started."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_from_env(device=None, *, timed: bool = False) -> DistributedReducer:
    """Initialise the default process group from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR, MASTER_PORT) and return its reducer. ``device`` ('auto', 'cuda' or 'cpu', as ``--device``):
    on CUDA each process takes GPU ``LOCAL_RANK`` and the NCCL backend, on the CPU the gloo backend."""
    from .runtime import get_device

    missing = [k for k in TORCHRUN_ENV if k not in os.environ]
    if missing:
        raise RuntimeError(f"not launched by torchrun: the environment lacks {', '.join(missing)}; start with "
                           f"`torchrun --nproc_per_node=N -m hebblib reproduce ...`")
    if not dist.is_available():
        raise RuntimeError("this build of torch has no torch.distributed")
    cuda = get_device(device).type == "cuda"
    if cuda:
        local_rank = int(os.environ["LOCAL_RANK"])
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local_rank} but this machine has {torch.cuda.device_count()} CUDA "
                             f"GPU(s): start at most that many processes per node (--nproc_per_node)")
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return DistributedReducer(timed=timed)


def process_device(device=None) -> str:
    """The device of this process in a data-parallel run: ``cuda:LOCAL_RANK`` on CUDA, else 'cpu'."""
    from .runtime import get_device

    if get_device(device).type == "cuda":
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return "cpu"


# ----- one run, data-parallel ----------------------------------------------------------------------------
def check_distributable(config, world_size: int) -> None:
    """A preset runs data-parallel when it has a Hebbian phase and a linear read-out, and both of its global
    batch sizes split evenly over ``world_size`` processes; else one error naming the value."""
    mode = config.supervised.mode
    if mode != "linear":
        raise ValueError(f"supervised.mode {mode!r}: a data-parallel run (torchrun) trains the Hebbian phase and "
                         f"the linear read-out ('linear' presets such as 'soft' or 'optimal'); run an "
                         f"end-to-end or hybrid preset in one process (python -m hebblib reproduce ...)")
    if config.supervised.flip_average:
        raise ValueError("supervised.flip_average True: the data-parallel read-out evaluates one view only; run a "
                         "flip-averaging preset in one process (python -m hebblib reproduce ...), or set it False")
    check = DistributedReducer.check_batch_size
    holder = type("World", (), {"world_size": world_size})()
    check(holder, config.unsupervised.batch_size, "unsupervised.batch_size")
    check(holder, config.supervised.batch_size, "supervised.batch_size")


def run_preset_distributed(preset, *, reducer: DistributedReducer, original: bool = False, notice=print,
                           **options) -> dict:
    """:func:`hebblib.training.run_preset` with this process as one of ``reducer.world_size``: the same named
    steps, with the Hebbian phase, the features and the classifier data-parallel, and the files written by
    rank 0 only. The run's folder and key are those of the one-process run (the same computation), so
    either resumes the other. Returns the record in every process (with ``distributed``: world size and
    backend)."""
    from . import training as tr
    from .results import write_json

    first = reducer.rank == 0
    run = tr.plan_run(preset, original=original, **options)
    if run.options.compile:
        raise ValueError("compile=True fuses one-process runs only; a data-parallel run computes eagerly: "
                         "valid choice here: compile=False")
    check_distributable(run.config, reducer.world_size)
    # rank 0 first: a download or a ZCA fit happens once; the others then read what it left
    if first:
        tr.prepare_data(run, notice)
    reducer.barrier()
    if not first:
        tr.prepare_data(run, None)
    tr.run_folder(run)
    done = reducer.broadcast_object(tr.finished_result(run) if first else None)
    if done is not None:
        return done
    model = tr.initial_model(run)
    reducer.broadcast_module(model)
    hebbian_phase(run, model, reducer)
    if run.options.stop_after == "unsupervised":
        return tr.result_record(run, model)
    features = split_features(run, model, reducer)
    history = train_classifier(run, model, features, reducer)
    result = tr.result_record(run, model, history)
    result["distributed"] = reducer.describe()
    if first:
        write_json(run.run_dir / "results.json", result)
    return result


def hebbian_phase(run, model, reducer: DistributedReducer) -> dict:
    """:func:`hebblib.training.hebbian_phase`, data-parallel: rank 0 reads a checkpoint of this run and sends
    it to every process, or all train (:func:`hebblib.training.train_hebbian` with the reducer) and rank 0
    writes ``unsupervised.pt``."""
    from . import training as tr
    from .results import load_checkpoint, save_checkpoint

    unsup = run.config.unsupervised
    checkpoint = None
    if run.options.resume and reducer.rank == 0:
        checkpoint = load_checkpoint(run.run_dir / "unsupervised.pt", run.key)
    checkpoint = reducer.broadcast_object(checkpoint)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        model.to(run.device)
        stats, run.resumed = checkpoint["stats"], True
    else:
        stats = tr.train_hebbian(model, run.train, epochs=unsup.epochs, batch_size=unsup.batch_size,
                                 augment=unsup.augment, layerwise=unsup.layerwise,
                                 warmup_batches=unsup.warmup_batches,
                                 generator=tr.stream_generator(run.seed, "hebbian"),
                                 progress=run.options.progress and reducer.rank == 0, label=run.label,
                                 precision=run.precision.name, reducer=reducer)
        if reducer.rank == 0:
            save_checkpoint(run.run_dir / "unsupervised.pt", {"config_hash": run.key, "model": model.state_dict(),
                                                             "stats": stats})
    run.unsupervised = stats
    return stats


def extract_features(model, data, reducer: DistributedReducer, *, flip: bool = False, dtype=torch.float16,
                     progress: bool = True, desc: str = "features", precision: str = "fp32") -> torch.Tensor:
    """:func:`hebblib.classifier.extract_features` of every image of ``data``, each process computing its
    block (:meth:`DistributedReducer.rows`) and all of them gathered, in order, in every process. The cache
    is float16 unless any block exceeded its range, then bfloat16 in every process (a row another process
    cached in float16 first is converted, where one process would have computed it as bfloat16 directly:
    the same value rounded twice)."""
    from .classifier import extract_features as extract
    from .errors import HebbianDivergenceError

    rows = reducer.rows(len(data))
    block = data.subset(torch.arange(rows.start, rows.stop))
    error = None
    try:
        local = extract(model, block, flip=flip, dtype=dtype, progress=progress, desc=desc, precision=precision)
    except HebbianDivergenceError as err:
        error, local = err, torch.empty(0, model.num_features, dtype=dtype, device=data.device)
    if reducer.any(error is not None):  # every process stops, not only the one whose block diverged
        raise error or HebbianDivergenceError(f"{desc}: the frozen network produced non-finite features in "
                                              f"another process's block (NaN/inf)")
    if reducer.any(local.dtype == torch.bfloat16):
        local = local.to(torch.bfloat16)
    # gathered as raw bytes: every backend moves uint8 (gloo has no bfloat16 all-gather)
    gathered = reducer.gather(local.view(torch.uint8))
    return gathered.view(local.dtype)


def split_features(run, model, reducer: DistributedReducer) -> tuple:
    """:func:`hebblib.training.split_features`, data-parallel (:func:`extract_features`)."""
    t1 = time.perf_counter()
    model.requires_grad_(False)
    model.classifier.requires_grad_(True)
    common = dict(progress=run.options.progress and reducer.rank == 0, precision=run.precision.name)
    feats, dtype = {}, torch.float16
    for name, data in (("train", run.train), ("val", run.val), ("test", run.test)):
        feats[name] = extract_features(model, data, reducer, dtype=dtype, desc=f"{run.name} {name} features",
                                       **common)
        dtype = feats[name].dtype
    mirrored = None
    if run.config.supervised.augment:
        mirrored = extract_features(model, run.train, reducer, flip=True, dtype=dtype,
                                    desc=f"{run.name} mirrored features", **common)
    run.timings["features"] = time.perf_counter() - t1
    return feats, mirrored


def train_classifier(run, model, features: tuple, reducer: DistributedReducer) -> list[dict]:
    """:func:`hebblib.training.train_classifier` of a linear read-out, data-parallel
    (:func:`train_linear_probe`); rank 0 writes ``supervised.pt``."""
    from . import training as tr
    from .results import save_checkpoint

    sup = run.config.supervised
    torch.manual_seed(tr.derive_seed(run.seed, "classifier_init"))  # the dropout masks, as in one process
    feats, mirrored = features
    t1 = time.perf_counter()
    train_set = (feats["train"], run.train.labels) + ((mirrored,) if sup.augment else ())
    history = train_linear_probe(model.dropout.p, model.classifier, train_set, (feats["val"], run.val.labels),
                                 (feats["test"], run.test.labels), reducer=reducer, epochs=run.epochs, lr=sup.lr,
                                 batch_size=sup.batch_size, schedule=sup.schedule, augment=sup.augment,
                                 generator=tr.stream_generator(run.seed, "classifier_batches"),
                                 progress=run.options.progress and reducer.rank == 0, desc=f"{run.name} classifier")
    run.timings["supervised"] = time.perf_counter() - t1
    if reducer.rank == 0:
        save_checkpoint(run.run_dir / "supervised.pt", {"config_hash": run.key, "state": model.classifier.state_dict(),
                                                        "mode": sup.mode})
        (run.run_dir / "end_to_end.pt").unlink(missing_ok=True)
    return history


def train_linear_probe(dropout: float, linear, train, val, test, *, reducer: BatchReducer, epochs: int,
                       lr: float = 1e-3, batch_size: int = 64, schedule: str = "nimmo_step", augment: bool = True,
                       generator=None, progress: bool = True, desc: str = "classifier") -> list[dict]:
    """:func:`hebblib.classifier.train_linear_probe` of a ``Dropout(dropout) → linear`` head with Adam,
    data-parallel: each process takes its rows of every global batch (the same order and flips in every
    process, from ``generator``), its loss is its rows' share of the batch mean, and the head's gradient is
    summed over the processes before every step: the gradient of one process's batch mean. The dropout mask
    is drawn for the whole global batch (:func:`hebblib.dropout.dropout_mask`, torch's global generator,
    seeded alike in every process) and cut to the rows, so on the CPU the masks are one process's too.
    Validation and test accuracy: each process counts its block, the counts are summed."""
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    from .classifier import _correct_on_features, _record, lr_factor, probe_optimizer, set_rate
    from .dropout import dropout_mask
    from .runtime import flush_denormals

    if reducer.distributed:
        reducer.check_batch_size(batch_size, "supervised.batch_size")
    feats, labels = train[0], train[1]
    mirrored = train[2] if len(train) > 2 else None
    n, device = len(feats), feats.device
    optimizer = probe_optimizer(linear.parameters(), "adam", lr, device)
    history = []
    with flush_denormals():
        for epoch in tqdm(range(epochs), desc=desc, disable=not progress, leave=False):
            rate = lr * lr_factor(schedule, epoch, epochs)
            set_rate(optimizer, rate)
            linear.train()
            order, flips = epoch_draws(n, device, generator, flip=augment and mirrored is not None)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), dtype=torch.long, device=device)
            for start in range(0, n, batch_size):
                index = order[start:start + batch_size]
                rows = reducer.rows(len(index))
                mine = index[rows]
                x = feats[mine]
                if flips is not None:
                    take = flips[mine]
                    x[take] = mirrored[mine[take]]
                x = x.float()
                if dropout > 0:
                    x = x * dropout_mask((len(index), x.shape[1]), dropout, device=device)[rows]
                logits = linear(x)
                loss = F.cross_entropy(logits, labels[mine], reduction="sum") / len(index)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                reducer.sum(*(p.grad for p in linear.parameters()))
                optimizer.step()
                loss_sum += loss.detach() * len(index)
                correct += (logits.argmax(1) == labels[mine]).sum()
            linear.eval()
            counts = [loss_sum.float(), correct.float()]
            for split in (val, test):
                block = reducer.rows(len(split[0]))
                counts.append(_correct_on_features(linear, split[0][block], split[1][block]).float())
            loss_sum, correct, val_correct, test_correct = reducer.sum(torch.stack(counts)).unbind()
            history.append(_record(epoch, rate, loss_sum, correct, n, val_correct, len(val[0]), test_correct,
                                   len(test[0])))
    return history


def reproduce_distributed(preset, *, seeds: int = 1, first_seed: int = 0, out=None,
                          reducer: DistributedReducer | None = None, **options) -> dict:
    """:func:`hebblib.training.reproduce` under torchrun: every seed a data-parallel run
    (:func:`run_preset_distributed`), rank 0 writing ``summary.json``. Without ``reducer`` the process group
    is initialised from torchrun's environment (:func:`init_from_env`) and destroyed at the end. Each
    process's ``device`` is ``cuda:LOCAL_RANK`` on CUDA. Progress bars and notices come from rank 0 only."""
    from pathlib import Path

    from .results import summarize_runs, write_json

    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an int >= 1, got {seeds!r}")
    own = reducer is None
    if own:
        reducer = init_from_env(options.get("device"))
    try:
        options["device"] = process_device(options.get("device"))
        if reducer.rank != 0:
            options["progress"] = False
        notice = print if reducer.rank == 0 else None
        results = [run_preset_distributed(preset, reducer=reducer, seed=s, out=out, notice=notice, **options)
                   for s in range(first_seed, first_seed + seeds)]
        summary = summarize_runs(results)
        summary["runs"] = results
        summary_path = Path(results[0]["run_dir"]).parent / "summary.json"
        if reducer.rank == 0:
            write_json(summary_path, {k: v for k, v in summary.items() if k != "runs"})
        summary["summary_path"] = str(summary_path)
        summary["rank"] = reducer.rank
        reducer.barrier()
        return summary
    finally:
        if own and dist.is_initialized():
            dist.destroy_process_group()


# ----- several runs at once ---------------------------------------------------------------------------
def _run_one(preset, seed: int, threads: int, options: dict) -> dict:
    """One run in a worker process (the same call as in the parent, on ``threads`` torch threads)."""
    from .training import run_preset

    torch.set_num_threads(threads)
    return run_preset(preset, seed=seed, notice=None, **options)


def run_seeds_in_processes(preset, seeds, parallel: int, *, threads: int | None = None, **options) -> list[dict]:
    """:func:`hebblib.training.run_preset` for every seed of ``seeds``, ``parallel`` runs at a time, each in a
    process of its own (spawned; results in the order of ``seeds``). Every run is the one-process run of that
    seed: the same folder, checkpoints and numbers as running it alone on the same number of torch threads,
    ``threads`` (default: this machine's cores / ``parallel``, at least 1; floating-point sums may split
    differently on another number of threads). On a machine with several CUDA GPUs (``device`` 'auto' or
    'cuda') the runs go to the GPUs in turn. Options and data are checked and the data prepared here, once
    (a download or a ZCA fit, which the workers then read from its cache), before any process starts."""
    import concurrent.futures
    import multiprocessing

    from .runtime import get_device
    from .training import plan_run, prepare_data

    seeds = list(seeds)
    if not isinstance(parallel, int) or isinstance(parallel, bool) or parallel < 1:
        raise ValueError(f"parallel must be an int >= 1 (runs at a time), got {parallel!r}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be an int >= 1 (torch threads per run), got {threads!r}")
    threads = threads or max(1, (os.cpu_count() or 1) // parallel)
    # every bad option or preset value, and missing data, fails here, in this process
    prepare_data(plan_run(preset, seed=seeds[0], **options), notice=print)
    gpus = torch.cuda.device_count() if get_device(options.get("device")).type == "cuda" else 0
    options = {**options, "progress": False}  # several bars at once would garble each other
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(parallel, len(seeds)), mp_context=context) as pool:
        futures = [pool.submit(_run_one, preset, seed, threads,
                               {**options, "device": f"cuda:{i % gpus}"} if gpus > 1 else options)
                   for i, seed in enumerate(seeds)]
        return [future.result() for future in futures]


# ----- scaling bench ------------------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port on the loopback interface that is free now (for a process group on one machine)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bench_worker(rank, world_size, port, preset, device, batch_size, batches, warmup, threads, width_factor, queue):
    """One process of the scaling bench: ``warmup + batches`` Hebbian steps of ``preset``'s network at the
    global ``batch_size`` (this process's shard of each), timed after the warm-up; then the all-reduce of a
    buffer the size of every Hebbian layer's weights alone, timed 3 times."""
    try:
        from .data import DeviceDataset, load_cifar
        from .data.zca import fit_zca
        from .presets import build_model, resolve_preset
        from .runtime import get_device, seed_everything
        from .training import train_hebbian

        torch.set_num_threads(threads)
        device = get_device(device)
        if world_size > 1:
            os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
            if device.type == "cuda":
                device = torch.device("cuda", rank)
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world_size)
        reducer = DistributedReducer(timed=True) if world_size > 1 else LOCAL
        config = resolve_preset(preset)
        if width_factor is not None:
            config["model"] = {**config.get("model", {}), "width_factor": width_factor}
        images, labels = load_cifar(True, source="subset")
        n = (warmup + batches) * batch_size
        normalization = config["data"].get("normalization", "none")
        zca = fit_zca(images, config["data"].get("zca_eps", 1e-3), cache=False) if normalization == "zca" else None
        data = DeviceDataset(images[:n], labels[:n], normalization, zca, augment=True, device=device)
        seed_everything(0)
        model = build_model(config).to(device)
        weights = sum(layer.weight.numel() for layer in model.hebbian_layers().values())
        stamps = []

        def stamp(_model):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            stamps.append(time.perf_counter())
            if len(stamps) == warmup and reducer.distributed:
                reducer.seconds, reducer.calls = 0.0, 0

        train_hebbian(model, data, batch_size=batch_size, generator=torch.Generator().manual_seed(0),
                      progress=False, precision="fp32", callback=stamp, reducer=reducer)
        seconds = stamps[-1] - stamps[warmup - 1]
        allreduce = None
        if reducer.distributed:
            buffer = torch.ones(weights, device=device)
            reducer.barrier()
            start = time.perf_counter()
            for _ in range(3):
                dist.all_reduce(buffer)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            allreduce = (time.perf_counter() - start) / 3
        queue.put({"rank": rank, "seconds": seconds, "collective_seconds": getattr(reducer, "seconds", 0.0),
                   "collective_calls": getattr(reducer, "calls", 0), "weights": weights, "allreduce_s": allreduce,
                   "threads": torch.get_num_threads(), "device": str(device)})
    except BaseException as err:  # noqa: BLE001 - reported by the parent
        queue.put({"rank": rank, "error": f"{type(err).__name__}: {err}"})
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def bench_scaling(preset: str = "soft", processes=(1, 2), *, device="cpu", batch_size: int = 64, batches: int = 4,
                  warmup: int = 1, threads: int = 1, rounds: int = 1, width_factor: float | None = None,
                  print_fn=print) -> dict:
    """Strong scaling of the Hebbian phase: the same global batches (``batch_size``, fp32) trained by N
    processes for each N of ``processes`` (N = 1 is the plain one-process path, no process group), each
    process on ``threads`` torch threads, the N interleaved over ``rounds``. Reports the time per global
    batch t_N (the slowest process), images/s, speed-up t_1 / t_N and efficiency t_1 / (N · t_N), the share
    of time inside the collectives (waiting for the slowest process included), and the all-reduce of a
    buffer the size of all Hebbian weights (what every step sends) timed alone.
    ``python -m hebblib bench --preset soft --processes 1 2``."""
    import multiprocessing

    from .presets import resolve_preset
    from .runtime import cpu_model

    resolve_preset(preset)  # a bad name fails here, not in a child
    processes = [int(p) for p in processes]
    if not processes or min(processes) < 1:
        raise ValueError(f"processes must be ints >= 1, got {processes!r}")
    if warmup < 1 or batches < 1:
        raise ValueError(f"warmup and batches must be >= 1, got warmup={warmup!r}, batches={batches!r}")
    for n in processes:
        if batch_size % n:
            raise ValueError(f"batch_size {batch_size} is not divisible by {n} processes; use a multiple of "
                             f"{n}")
    context = multiprocessing.get_context("spawn")
    load = lambda: os.getloadavg() if hasattr(os, "getloadavg") else None  # noqa: E731
    started, load_before = time.perf_counter(), load()
    runs = {n: [] for n in processes}
    for r in range(rounds):
        for n in processes:
            queue, port = context.Queue(), free_port()
            children = [context.Process(target=_bench_worker, args=(rank, n, port, preset, device, batch_size,
                                                                    batches, warmup, threads, width_factor, queue))
                        for rank in range(n)]
            for child in children:
                child.start()
            results = []
            while len(results) < n:
                try:
                    results.append(queue.get(timeout=5))
                except Exception:  # noqa: BLE001 - queue.Empty: a child that died without a word must not hang us
                    if not any(child.is_alive() for child in children):
                        results.append({"error": f"exit codes {[c.exitcode for c in children]}"})
            for child in children:
                child.join()
            errors = [res["error"] for res in results if "error" in res]
            if errors:
                raise RuntimeError(f"bench with {n} process(es) failed: {errors[0]}")
            runs[n].append(results)
            print_fn(f"  round {r + 1}/{rounds}: {n} process(es) done")
    rows = {}
    for n, rounds_of_n in runs.items():
        per_batch = sum(max(res["seconds"] for res in results) for results in rounds_of_n) / (batches * rounds)
        inside = sum(max(res["collective_seconds"] for res in results) for results in rounds_of_n)
        allreduce = [res["allreduce_s"] for results in rounds_of_n for res in results if res["allreduce_s"]]
        rows[n] = {"seconds_per_batch": per_batch, "img_s": batch_size / per_batch,
                   "collective_share": inside / (per_batch * batches * rounds),
                   "collective_calls_per_batch": rounds_of_n[0][0]["collective_calls"] / batches,
                   "allreduce_weights_s": sum(allreduce) / len(allreduce) if allreduce else None}
    base = rows[min(processes)]
    for n, row in rows.items():
        row["speedup"] = base["seconds_per_batch"] / row["seconds_per_batch"] * min(processes)
        row["efficiency"] = row["speedup"] / n
    first = runs[processes[0]][0][0]
    result = {"preset": preset, "width_factor": width_factor, "batch_size": batch_size, "batches": batches,
              "warmup": warmup, "rounds": rounds, "threads_per_process": first["threads"], "device": first["device"],
              "weights": first["weights"], "rows": rows, "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
              "torch": torch.__version__, "load_before": load_before, "load_after": load(),
              "wall_s": time.perf_counter() - started}
    print_fn(format_scaling(result))
    return result


def format_scaling(r: dict) -> str:
    """The report :func:`bench_scaling` prints."""
    width = "its own width" if r["width_factor"] is None else f"width_factor {r['width_factor']:g}"
    load = lambda v: "n/a" if v is None else " ".join(f"{x:.2f}" for x in v)  # noqa: E731
    lines = [f"data-parallel Hebbian phase of {r['preset']!r} ({width}; {r['weights']:,} Hebbian weights, summed "
             f"over the processes every step), global batch {r['batch_size']}, fp32, {r['batches']} timed batches "
             f"after {r['warmup']} warm-up, {r['rounds']} round(s)",
             f"{r['device']}; CPU {r['cpu_model']} ({r['cpu_count']} logical CPUs); {r['threads_per_process']} torch "
             f"thread(s) per process; torch {r['torch']}; load average before {load(r['load_before'])}, after "
             f"{load(r['load_after'])}",
             f"  {'processes':>9} {'s/batch':>8} {'img/s':>7} {'speed-up':>8} {'efficiency':>10} "
             f"{'in collectives':>14} {'collectives/batch':>17} {'all-reduce of the weights alone':>32}"]
    for n, row in r["rows"].items():
        alone = "—" if row["allreduce_weights_s"] is None else f"{row['allreduce_weights_s'] * 1e3:.1f} ms"
        lines.append(f"  {n:>9} {row['seconds_per_batch']:8.3f} {row['img_s']:7.1f} {row['speedup']:8.2f} "
                     f"{row['efficiency']:10.2f} {row['collective_share']:14.1%} "
                     f"{row['collective_calls_per_batch']:17.0f} {alone:>32}")
    lines.append("  efficiency = t_1 / (N · t_N), t_N the time per global batch with N processes (the slowest)")
    return "\n".join(lines)
