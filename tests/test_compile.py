"""torch.compile of the Hebbian phase and the feature extraction: the same values as the eager code up to
rounding, only full batches compiled, recorded and keyed apart, bad requests refused before any work."""
from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch

from hebblib import runtime, training
from hebblib.classifier import extract_features
from hebblib.data import DeviceDataset
from hebblib.layers import one_step_updates
from hebblib.presets import build_model, get_preset
from hebblib.results import precision_label

needs_compiler = pytest.mark.skipif(runtime.compile_problem("cpu") is not None,
                                    reason=f"torch.compile can't run here: {runtime.compile_problem('cpu')}")


def _soft(width=0.25):
    preset = get_preset("soft")
    preset["model"]["width_factor"] = width  # conv2 and conv3 keep fan-ins >= 128: their bf16 products run
    return preset


def _images(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    return DeviceDataset(images, torch.arange(n) % 10, normalization="standardize", device="cpu")


def _relative(a, b):
    return ((a - b).norm() / b.norm()).item()


@needs_compiler
def test_a_compiled_step_gives_the_eager_update():
    torch.manual_seed(0)
    model = build_model(_soft()).train()
    state = copy.deepcopy(model.state_dict())
    x, _ = _images().get(slice(0, 16))
    fused = runtime.compiled_features(model, 16)
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        for name, forward in (("eager", model.features), ("compiled", fused)):
            model.load_state_dict(state)
            results[dtype, name] = one_step_updates(model, forward, x, dtype)
    exact = results[torch.float32, "eager"]
    for layer, reference in exact.items():
        assert reference.abs().max() > 0  # the step learned something
        # fp32: rounding only (a wrong sign, sum or missing term would be of order 1)
        assert _relative(results[torch.float32, "compiled"][layer], reference) < 1e-4, layer
        # bf16: the compiled path is no further from fp32 than the eager bf16 path is
        eager_error = _relative(results[torch.bfloat16, "eager"][layer], reference)
        assert _relative(results[torch.bfloat16, "compiled"][layer], reference) <= 1.5 * eager_error + 1e-5, layer


def test_only_batches_of_the_compiled_size_go_through_the_compiled_function():
    model = build_model(_soft())
    calls = []

    def recording(x, **kwargs):
        calls.append(x.shape[0])
        return model.features(x, **kwargs)

    model.__dict__[runtime.COMPILE_ATTRIBUTE] = (id(model), recording)  # what compiled_features keeps and reuses
    forward = runtime.compiled_features(model, 16)
    model.eval()
    with torch.no_grad():
        full = forward(torch.randn(16, 3, 32, 32))
        short = forward(torch.randn(8, 3, 32, 32))
    assert calls == [16]
    assert full.shape[0] == 16 and short.shape[0] == 8
    assert model.__dict__[runtime.COMPILE_ATTRIBUTE] == (id(model), recording)
    # a deep copy carries the attribute, bound to the original's features: the copy compiles its own
    twin = copy.deepcopy(model)
    runtime.compiled_features(twin, 16)
    owner, compiled = twin.__dict__[runtime.COMPILE_ATTRIBUTE]
    assert owner == id(twin) and compiled is not recording
    # each model, mode and precision is a compilation of the one shared features(): torch's limit is raised
    assert torch._dynamo.config.recompile_limit >= runtime.COMPILE_LIMIT


@needs_compiler
def test_compiled_features_are_the_eager_features():
    torch.manual_seed(1)
    model = build_model(_soft())
    data = _images(n=20)
    eager = extract_features(model, data, batch_size=8, dtype=torch.float32, progress=False)
    fused = extract_features(model, data, batch_size=8, dtype=torch.float32, progress=False, compile=True)
    assert eager.abs().max() > 0
    assert _relative(fused, eager) < 1e-5  # two full batches compiled, the last 4 images eager


@needs_compiler
def test_a_compiled_run_records_it_and_has_its_own_folder(tmp_path):
    options = dict(quick=True, limit_train=100, limit_test=20, val_size=10, progress=False, out=tmp_path,
                   stop_after="unsupervised", precision="fp32")
    fused = training.run_preset(_soft(), compile=True, **options)
    plain = training.run_preset(_soft(), **options)
    assert fused["precision"]["compile"] is True and "compile" not in plain["precision"]
    assert fused["run_dir"] != plain["run_dir"] and fused["config_hash"] != plain["config_hash"]
    assert precision_label(fused) == "fp32, compiled" and precision_label(plain) == "fp32"


def test_compile_is_refused_before_any_work_where_it_cannot_apply(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="compile must be True or False, got 'yes'"):
        training.plan_run("soft", compile="yes", out=tmp_path)
    with pytest.raises(ValueError, match="'backprop' trains end_to_end; valid choice: compile=False"):
        training.plan_run("backprop", compile=True, out=tmp_path)
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    assert "no C++ compiler" in runtime.compile_problem("cpu")
    with pytest.raises(ValueError, match="compile=True: no C\\+\\+ compiler .*valid choice here: compile=False"):
        training.plan_run("soft", compile=True, device="cpu", out=tmp_path)
    assert runtime.compile_problem("meta") == "no torch.compile path for device type 'meta'"


def test_the_cli_refuses_compile_for_the_contrastive_presets():
    out = subprocess.run([sys.executable, "-m", "hebblib", "reproduce", "--preset", "contrastive_mlp", "--compile",
                          "--quick"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "--compile fuses one-process runs of the Hebbian presets (not the contrastive preset 'contrastive_mlp')" \
        in out.stderr


@needs_compiler
@pytest.mark.filterwarnings("ignore:.*float16 range")
def test_the_bench_times_the_compiled_path_beside_the_others():
    from hebblib.bench import bench

    lines = []
    result = bench("soft", device="cpu", quick=True, batches=1, batch_size=16, rounds=1, warm_batches=1,
                   classifier_epochs=1, print_fn=lines.append, precision="fp32", compile=True)
    for window in ("initial", "steady"):
        row = result["unsupervised"][window]["fp32+ftz+patches+compile"]
        assert row["img_s"] > 0 and row["peak_dtype"] == "fp32" and row["layers"] == {}
        assert set(result["unsupervised"][window]) == {"naive", "fp32", "fp32+ftz", "fp32+ftz+patches", "bf16",
                                                       "fp32+ftz+patches+compile"}
    assert result["classifier_extract_img_s"]["fp32+compile"] > 0 and result["classifier_epoch_compiled_s"] > 0
    report = "\n".join(lines)
    assert "fp32+ftz+patches+compile" in report and "(fused)" in report and "fp32+compile" in report
    assert "compiled batches:" in report


def test_the_cli_bench_refuses_compile_with_phases():
    out = subprocess.run([sys.executable, "-m", "hebblib", "bench", "--phases", "--compile"], capture_output=True,
                         text=True)
    assert out.returncode == 2 and "--compile adds a compiled path to the one-process bench" in out.stderr


@needs_compiler
@pytest.mark.parametrize("augment", [True, False])
def test_the_compiled_probe_batch_trains_the_head_bit_for_bit_as_the_eager_one(augment, monkeypatch):
    """Gather, mirror choice, widening and FastDropout in one compiled pass: with a probability that needs all
    16 bits of a mask value (0.2), the same draws and the same bits."""
    from hebblib import classifier
    from hebblib.classifier import train_linear_probe
    from hebblib.dropout import FastDropout

    compiled, calls = classifier._fused_batch_function(), []

    def counted(*args):
        calls.append(args[2].shape[0])
        return compiled(*args)

    monkeypatch.setattr(classifier, "_fused_batch_function", lambda: counted)

    g = torch.Generator().manual_seed(0)
    feats = torch.randn(150, 96, generator=g).half()
    train = (feats, torch.arange(150) % 10) + ((torch.randn(150, 96, generator=g).half(),) if augment else ())
    pair = (feats[:40], torch.arange(40) % 10)
    heads, histories = [], []
    for compile in (False, True):
        torch.manual_seed(3)
        head = torch.nn.Sequential(FastDropout(0.2), torch.nn.Linear(96, 10))
        histories.append(train_linear_probe(head, train, pair, pair, epochs=2, batch_size=32, augment=augment,
                                            generator=torch.Generator().manual_seed(4), progress=False,
                                            compile=compile))  # 150 = 4 full batches + 22 eager
        heads.append(head)
    assert calls == [32] * 8  # two epochs of four full batches went through the compiled pass
    assert histories[0] == histories[1]
    for a, b in zip(heads[0].parameters(), heads[1].parameters()):
        assert torch.equal(a, b)


@needs_compiler
@pytest.mark.parametrize("p, bits", [(0.5, 1), (0.25, 2)])
def test_the_compiled_probe_batch_with_fewer_bits_is_the_packed_mask_times_the_rows(p, bits):
    """Where fewer bits decide p, the compiled pass keeps value j where the j-th ``bits``-bit field of the words
    reaches p · 2**bits (read here by numpy, bit by bit), mirrored rows where drawn, times 1/(1 − p)."""
    import numpy as np

    from hebblib import classifier
    from hebblib.dropout import field_bits, packed_words

    assert field_bits(p) == bits
    g = torch.Generator().manual_seed(1)
    feats, mirrored = torch.randn(50, 96, generator=g).half(), torch.randn(50, 96, generator=g).half()
    index, flips = torch.randperm(50, generator=g)[:16], torch.rand(16, generator=g) < 0.5
    torch.manual_seed(9)
    words = packed_words(16 * 96, bits)
    x = classifier._fused_batch_function()(feats, mirrored, index, flips, words, bits,
                                           classifier._mask_threshold(p, bits), 1.0 / (1.0 - p))
    stream = np.unpackbits(words.numpy().view(np.uint8), bitorder="little")[: 16 * 96 * bits]
    fields = (stream.reshape(-1, bits) * (2 ** np.arange(bits))).sum(1).reshape(16, 96)
    keep = torch.from_numpy(fields >= p * 2**bits)
    rows = torch.where(flips.unsqueeze(1), mirrored[index], feats[index]).float()
    assert torch.equal(x, torch.where(keep, rows * (1.0 / (1.0 - p)), torch.zeros(())))  # scale: one rounding


@needs_compiler
def test_the_compiled_probe_draws_one_bit_per_value_at_p_one_half(monkeypatch):
    from hebblib import classifier
    from hebblib.classifier import train_linear_probe
    from hebblib.dropout import FastDropout, packed_words

    drawn = []

    def counted(n, bits, **kwargs):
        drawn.append((n, bits))
        return packed_words(n, bits, **kwargs)

    monkeypatch.setattr(classifier, "packed_words", counted)
    g = torch.Generator().manual_seed(0)
    train = (torch.randn(70, 96, generator=g).half(), torch.arange(70) % 10)
    head = torch.nn.Sequential(FastDropout(0.5), torch.nn.Linear(96, 10))
    history = train_linear_probe(head, train, train[:2], train[:2], epochs=1, batch_size=32, progress=False,
                                 compile=True, generator=torch.Generator().manual_seed(4))
    assert drawn == [(32 * 96, 1)] * 2 and len(history) == 1  # two full batches compiled, the last 6 eager
