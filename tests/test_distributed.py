"""Data-parallel Hebbian training (hebblib.distributed) against one process, on the CPU with gloo.

Two processes (spawned, one torch thread each) train on their shards of the same global batches of real
CIFAR-10 images (the shipped subset); the state of every model (weights, BatchNorm running statistics, BCM θ,
temporal histories, adaptive thresholds, win counts) must equal the one-process run's within TOLERANCE,
relative to the largest entry of each tensor. And when one statistic is left unreduced, the states must differ:
the comparison can fail.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hebblib import distributed as hd
from hebblib import training
from hebblib.classifier import train_linear_probe as one_process_probe
from hebblib.data import DeviceDataset, load_cifar
from hebblib.distributed import LOCAL, BatchReducer, DistributedReducer
from hebblib.dropout import FastDropout
from hebblib.networks import build_network
from hebblib.presets import build_model, change_preset, get_preset
from hebblib.runtime import single_thread

WORLD = 2
# max |state_2 − state_1| / max |state_1|, per tensor: the largest seen on this machine was 1.8e-6 (float sums
# in another order: BatchNorm statistics, ΔW); a statistic left unreduced moved a state by 0.17 at least
TOLERANCE = 1e-5
IMAGES, BATCH = 64, 16  # 4 global batches of 16: 8 images per process and step
WIDTH = 0.125

# name: (preset, change merged into it); every preset at 1/8 of its width, standardised pixels (no ZCA fit)
PRESETS = {
    "soft": ("soft", {}),
    "optimal": ("optimal", {}),  # BCM θ + surround inhibition, hard WTA
    "temporal": ("temporal", {"hebbian": {"competition": {"window": 24}}}),  # the window truncates after 2 batches
    "adaptive": ("adaptive", {}),  # the statistical threshold
}
EXTRA = ("miconi", "krotov_hopfield")  # adaptive thresholds θ (Miconi); BatchNorm1d + a Hebbian linear layer
SKIPS = {  # a model, and the one kind of module whose reductions are left local
    "soft-skip-layers": ("soft", "layers"),  # ΔW and win counts normalised per process
    "soft-skip-batchnorm": ("soft", "batchnorm"),
    "optimal-skip-rule": ("optimal", "rule"),  # BCM θ from each process's half of the batch
    "temporal-skip-competition": ("temporal", "competition"),  # each process's own history
    "miconi-skip-competition": ("miconi", "competition"),  # adaptive θ from each process's firing
}


def _model(name):
    torch.manual_seed(0)
    if name in EXTRA:
        return build_network(name, width_factor=WIDTH)
    preset, change = PRESETS[name]
    config = change_preset(get_preset(preset), change) if change else get_preset(preset)
    config["model"]["width_factor"] = WIDTH
    return build_model(config)


def _data():
    images, labels = load_cifar(True, source="subset")
    return DeviceDataset(images[:IMAGES], labels[:IMAGES], "standardize", augment=True, device="cpu")


def _train(name, reducer=None):
    model = _model(name)
    training.train_hebbian(model, _data(), batch_size=BATCH, generator=torch.Generator().manual_seed(1),
                           progress=False, precision="fp32", reducer=reducer)
    return model.state_dict()


class SkipOne(DistributedReducer):
    """A reducer that leaves one kind of module's reductions local: the run must then differ."""

    def __init__(self, skip):
        super().__init__()
        self.skip = skip

    def attach(self, model):
        from torch.nn.modules.batchnorm import _BatchNorm

        from hebblib.competitions import Competition
        from hebblib.layers import _HebbianBase
        from hebblib.rules import Rule

        super().attach(model)
        kind = {"layers": _HebbianBase, "rule": Rule, "competition": Competition, "batchnorm": _BatchNorm}[self.skip]
        for module in model.modules():
            if isinstance(module, kind):
                module.__dict__.pop("forward" if self.skip == "batchnorm" else "reducer")


def _init(rank, store):
    """Join the two-process group through a file store in the test's folder: no TCP port is chosen ahead
    (a port found free and then taken by another process before rank 0 bound it once aborted the workers)."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)


def _worker(rank, store, out):
    """Everything the two processes compute, in one spawn (starting processes costs seconds)."""
    _init(rank, store)
    try:
        for name in (*PRESETS, *EXTRA):
            torch.save(_train(name, DistributedReducer()), out / f"{name}.rank{rank}.pt")
        for name, (model, skip) in SKIPS.items():
            torch.save(_train(model, SkipOne(skip)), out / f"{name}.rank{rank}.pt")
        torch.save(_probe(DistributedReducer()), out / f"probe.rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _spawn(worker, out, attempts: int = 2):
    """Run ``worker(rank, store, out)`` in two processes. A worker that dies (a signal, not a failed check: those
    write no state and fail the tests) is started once more with a fresh store, saying so: on a loaded CI
    machine a worker once aborted inside gloo ("terminate called without an active exception")."""
    for attempt in range(1, attempts + 1):
        store = out / f"rendezvous-{attempt}"
        try:
            mp.start_processes(worker, args=(str(store), out), nprocs=WORLD, start_method="spawn")
            return
        except mp.ProcessExitedException as err:
            if attempt == attempts:
                raise
            print(f"two-process worker died ({err}); starting it once more", file=sys.stderr)


def _difference(a: dict, b: dict) -> dict:
    """max |a − b| / max |b| of every floating-point tensor (keys and shapes must agree)."""
    assert a.keys() == b.keys()
    out = {}
    for key, ref in b.items():
        assert a[key].shape == ref.shape, key
        if ref.is_floating_point() and ref.numel():
            out[key] = float((a[key] - ref).abs().max() / ref.abs().max().clamp_min(1e-12))
        else:
            assert torch.equal(a[key], ref), key
    return out


@pytest.fixture(scope="module")
def states(tmp_path_factory):
    """Every model's state after 4 global batches: ``(folder of the two processes' by rank, one process's)``;
    the folder also holds the two processes' probes."""
    out = tmp_path_factory.mktemp("states")
    _spawn(_worker, out)
    with single_thread():
        reference = {name: _train(name) for name in (*PRESETS, *EXTRA)}
    return out, reference


@pytest.mark.parametrize("name", [*PRESETS, *EXTRA])
def test_two_processes_learn_what_one_process_learns(states, name):
    out, reference = states
    for rank in range(WORLD):
        state = torch.load(out / f"{name}.rank{rank}.pt")
        worst = _difference(state, reference[name])
        assert max(worst.values()) <= TOLERANCE, {k: v for k, v in worst.items() if v > TOLERANCE}
    # the statistics the run keeps are there and were compared: they must have moved from their start
    keys = reference[name].keys()
    assert any(k.endswith("running_mean") for k in keys) or name == "miconi"
    expected = {"optimal": "rule.theta", "temporal": "competition.history", "miconi": "competition.threshold"}
    if name in expected:
        assert any(k.endswith(expected[name]) for k in keys)
    if name == "temporal":  # the history is the global batch's last 24 samples, not a process's
        history = next(v for k, v in reference[name].items() if k.endswith("competition.history"))
        assert history.shape[0] == 24


@pytest.mark.parametrize("name", list(SKIPS))
def test_a_statistic_left_unreduced_is_caught(states, name):
    out, reference = states
    state = torch.load(out / f"{name}.rank0.pt")
    worst = _difference(state, reference[SKIPS[name][0]])
    assert max(worst.values()) > 100 * TOLERANCE, worst


# ----- the shards, without processes --------------------------------------------------------------------
class _Rank(BatchReducer):
    def __init__(self, rank, world_size):
        self.rank, self.world_size = rank, world_size


@pytest.mark.parametrize("world_size", [2, 3])
def test_the_blocks_in_rank_order_are_the_batches_of_one_process(world_size):
    data = _data()
    whole = list(data.batches(15, shuffle=True, augment=True, generator=torch.Generator().manual_seed(4)))
    parts = [list(hd._shard_batches(data, 15, _Rank(r, world_size), generator=torch.Generator().manual_seed(4)))
             for r in range(world_size)]
    assert len(whole) == 5  # 64 = 4 × 15 + 4: the last batch is short and one process gets 1 image of it
    for b, (x, y) in enumerate(whole):
        assert torch.equal(torch.cat([part[b][0] for part in parts]), x)
        assert torch.equal(torch.cat([part[b][1] for part in parts]), y)


def test_rows_split_a_batch_into_blocks_that_differ_by_at_most_one():
    for n in (0, 1, 5, 64):
        sizes = [len(range(n)[_Rank(r, 3).rows(n)]) for r in range(3)]
        assert sum(sizes) == n and max(sizes) - min(sizes) <= 1


def test_bad_input_names_the_values():
    config = training.plan_run("soft", quick=True).config
    with pytest.raises(ValueError, match=r"unsupervised.batch_size 64 is not divisible by the number of processes "
                                         r"3 .* such as 63 or 66"):
        hd.check_distributable(config, 3)
    with pytest.raises(ValueError, match="supervised.mode 'end_to_end'"):
        hd.check_distributable(training.plan_run("backprop", quick=True).config, 2)
    with pytest.raises(ValueError, match="supervised.flip_average True"):
        hd.check_distributable(training.plan_run("softhebb_flip", quick=True).config, 2)
    if not dist.is_initialized():
        with pytest.raises(RuntimeError, match="not launched by torchrun: the environment lacks"):
            hd.init_from_env("cpu")
    with pytest.raises(ValueError, match="parallel must be an int >= 1"):
        hd.run_seeds_in_processes("soft", [0], 0)


def test_one_process_reducer_is_the_identity():
    t = torch.randn(3, 4)
    assert LOCAL.sum(t) is t and LOCAL.gather(t) is t and LOCAL.total(7) == 7
    assert LOCAL.sum(t, None) == (t, None)
    assert torch.equal(LOCAL.mean(t.sum(0), 3), t.sum(0) / 3)


# ----- the read-out ---------------------------------------------------------------------------------------
def _probe_data():
    g = torch.Generator().manual_seed(3)
    feats = torch.randn(200, 24, generator=g)
    labels = torch.randint(0, 10, (200,), generator=g)
    mirrored = feats + 0.1 * torch.randn(200, 24, generator=g)
    return (feats, labels, mirrored), (feats[:50], labels[:50]), (feats[50:110], labels[50:110])


def _probe(reducer):
    torch.manual_seed(5)
    linear = torch.nn.Linear(24, 10)
    train, val, test = _probe_data()
    history = hd.train_linear_probe(0.5, linear, train, val, test, reducer=reducer, epochs=3, batch_size=16,
                                    generator=torch.Generator().manual_seed(6), progress=False)
    return linear.state_dict(), history


def test_the_sharded_probe_is_the_one_process_probe(states):
    """The data-parallel probe in one process equals hebblib.classifier's, and in two processes too (the same
    dropout masks, order and flips; the gradient summed over the processes)."""
    with single_thread():
        torch.manual_seed(5)
        linear = torch.nn.Linear(24, 10)
        train, val, test = _probe_data()
        expected = one_process_probe(torch.nn.Sequential(FastDropout(0.5), linear), train, val, test, epochs=3,
                                     batch_size=16, generator=torch.Generator().manual_seed(6), progress=False)
        local_state, local_history = _probe(LOCAL)
    for state, history in [(local_state, local_history),
                           *(torch.load(states[0] / f"probe.rank{r}.pt") for r in range(WORLD))]:
        assert max(_difference(state, linear.state_dict()).values()) <= TOLERANCE
        for mine, theirs in zip(history, expected):
            assert mine.keys() == theirs.keys()
            for key in ("train_acc", "val_acc", "test_acc", "epoch", "lr"):
                assert mine[key] == theirs[key], key
            assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-5)


# ----- a whole run: torchrun, rank 0 writes, resume -------------------------------------------------------
TINY = dict(quick=True, limit_train=256, limit_test=200, supervised_epochs=2, progress=False, precision="fp32")
CHANGE = {"model": {"width_factor": WIDTH}}


def _torchrun(out, *extra, env=None):
    command = [str(Path(sys.executable).parent / "torchrun"), f"--nproc_per_node={WORLD}", "--master_port",
               str(hd.free_port()), "-m", "hebblib", "reproduce", "--preset", "soft", "--change", json.dumps(CHANGE),
               "--quick", "--limit-train", "256", "--limit-test", "200", "--epochs", "2", "--precision", "fp32",
               "--device", "cpu", "--no-progress", "--out", str(out), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HEBBLIB_QUICK": "1", **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_torchrun_reproduces_the_one_process_run_and_resumes(tmp_path):
    preset = change_preset(get_preset("soft"), CHANGE)
    with single_thread():  # the half-finished one-process run: its Hebbian checkpoint only
        training.run_preset(preset, out=tmp_path / "a", stop_after="unsupervised", **TINY)
        alone = training.run_preset(preset, out=tmp_path / "b", **TINY)
    done = _torchrun(tmp_path / "a")  # two processes pick up the one-process checkpoint and finish the run
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("measured") == 3, done.stdout  # rank 0 reports, once
    record = json.loads(next((tmp_path / "a").rglob("results.json")).read_text())
    assert record["distributed"] == {"world_size": WORLD, "backend": "gloo"}
    assert record["unsupervised"]["resumed_from_checkpoint"]
    assert record["config_hash"] == alone["config_hash"]
    _same_accuracies(record, alone)

    fresh = _torchrun(tmp_path / "c")  # the whole run in two processes, then read back
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    again = _torchrun(tmp_path / "c")
    assert again.returncode == 0 and "finished earlier; read back" in again.stdout
    checkpoints = list((tmp_path / "c").rglob("unsupervised.pt"))
    assert len(checkpoints) == 1
    mine = torch.load(checkpoints[0])["model"]
    theirs = torch.load(next((tmp_path / "b").rglob("unsupervised.pt")))["model"]
    assert max(_difference(mine, theirs).values()) <= TOLERANCE
    _same_accuracies(json.loads(next((tmp_path / "c").rglob("results.json")).read_text()), alone)


def _same_accuracies(record, alone):
    """Every epoch's accuracies equal, or one image apart (float sums in another order may move one logit
    across another)."""
    sizes = {"train_acc": record["data"]["n_train"], "val_acc": record["data"]["n_val"],
             "test_acc": record["data"]["n_test"]}
    assert len(record["epochs"]) == len(alone["epochs"]) == 2
    for mine, theirs in zip(record["epochs"], alone["epochs"]):
        for key, n in sizes.items():
            assert mine[key] == pytest.approx(theirs[key], abs=100 / n + 1e-9), key


def test_the_command_line_refuses_parallel_seeds_under_torchrun(monkeypatch, capsys):
    from hebblib import cli

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert cli.main(["reproduce", "--preset", "soft", "--parallel", "2", "--quick"]) == 2
    assert "--parallel 2 runs seeds in processes of its own" in capsys.readouterr().err


# ----- seeds in parallel processes --------------------------------------------------------------------------
@pytest.mark.slow
def test_seeds_in_parallel_processes_are_the_runs_alone(tmp_path):
    preset = change_preset(get_preset("soft"), CHANGE)
    parallel = hd.run_seeds_in_processes(preset, [0, 1], 2, threads=1, out=tmp_path / "parallel", **TINY)
    with single_thread():
        alone = [training.run_preset(preset, seed=s, out=tmp_path / "alone", **TINY) for s in (0, 1)]
    for mine, theirs in zip(parallel, alone):
        assert mine["seed"] == theirs["seed"] and mine["config_hash"] == theirs["config_hash"]
        assert [e["test_acc"] for e in mine["epochs"]] == [e["test_acc"] for e in theirs["epochs"]]
        a = torch.load(Path(mine["run_dir"]) / "unsupervised.pt")["model"]
        b = torch.load(Path(theirs["run_dir"]) / "unsupervised.pt")["model"]
        assert all(torch.equal(a[k], b[k]) for k in b)  # bit for bit
    assert parallel[0]["epochs"] != parallel[1]["epochs"]  # two seeds, two runs


# ----- the scaling bench -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_scaling_bench_reports_each_process_count():
    lines = []
    result = hd.bench_scaling("soft", (1, 2), batch_size=8, batches=1, width_factor=WIDTH, print_fn=lines.append)
    rows = result["rows"]
    assert set(rows) == {1, 2} and result["threads_per_process"] == 1
    assert rows[1]["efficiency"] == 1.0 and rows[1]["allreduce_weights_s"] is None
    assert rows[2]["efficiency"] == pytest.approx(rows[1]["seconds_per_batch"] / (2 * rows[2]["seconds_per_batch"]))
    assert rows[2]["allreduce_weights_s"] > 0 and rows[2]["collective_calls_per_batch"] > 0
    assert result["weights"] == sum(p.numel() for n, p in _model("soft").named_parameters() if "conv" in n)
    report = lines[-1]
    assert "efficiency = t_1 / (N · t_N)" in report and result["cpu_model"] in report
    with pytest.raises(ValueError, match="batch_size 9 is not divisible by 2 processes"):
        hd.bench_scaling("soft", (1, 2), batch_size=9)
