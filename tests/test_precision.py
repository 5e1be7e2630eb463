"""The precision setting (fp32, bf16, auto) and the flush of subnormal floats.

* ``auto`` resolves from the hardware's flags (mocked here): bf16 on AMX CPUs and CUDA GPUs with native bf16,
  fp32 elsewhere; invalid names are one error listing the choices (function, preset key, run option, CLI).
* The bf16 path's pieces against independent formulations: the patches against ``F.unfold``, the Hebbian term
  and the forward from patches against the fp32/fp64 convolutions, first in exact arithmetic (same dtype: the
  formulation), then in bf16 (the rounding, within a stated bound).
* ΔW of every layer of every linear-probe preset, bf16 path against fp32, on a real CIFAR-10 batch, within the
  tolerances stated below (measured: docs/performance.md); the fp32 path is bit for bit what it was.
* Subnormals flush on every thread inside the real training, feature and classifier calls, and the caller's
  state comes back after them (nesting included).
"""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

import reference_hebbian as ref
from hebblib import HebbianConv2d, HebbianLinear, classifier, runtime, training
from hebblib import layers as layers_module
from hebblib import update as update_module
from hebblib.cli import main as cli_main
from hebblib.config import RunOptions
from hebblib.layers import compute_precision
from hebblib.presets import build_model, get_preset, list_presets, resolve_preset
from hebblib.runtime import (PRECISIONS, denormals_flushed, fast_bf16, flush_denormals, resolve_precision,
                             set_flush_denormal_everywhere)
from hebblib.update import (hebbian_term, hebbian_term_from_patches, low_precision_kernel, unfold_patches,
                            weight_matrix)

AMX = {"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}
COOPER_LAKE = {"avx2", "avx512f", "avx512_bf16"}
AVX2 = {"avx2", "fma"}
ARM_BF16 = {"fp", "asimd", "sve", "bf16"}


# ----- resolution -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("flags, expected", [(AMX, "bf16"), (COOPER_LAKE, "fp32"), (AVX2, "fp32"), (ARM_BF16, "fp32"),
                                             (set(), "fp32")])
def test_auto_picks_bf16_only_on_a_cpu_with_amx(flags, expected):
    chosen = resolve_precision("auto", "cpu", flags=flags, isa_cap="")
    assert chosen.name == expected and chosen.requested == "auto"
    assert chosen.dtype == {"bf16": torch.bfloat16, "fp32": torch.float32}[expected]
    assert ("amx" in chosen.reason.lower()) or ("bf16" in chosen.reason)  # the reason names what decided


@pytest.mark.parametrize("flags, has", [(AMX, True), (COOPER_LAKE, True), (ARM_BF16, True), (AVX2, False),
                                        ({"amx_tile", "avx512f"}, False), (set(), False)])
def test_bf16_instructions_are_told_from_the_flags(flags, has):
    assert runtime.cpu_has_bf16_instructions(flags) is has
    reason = fast_bf16("cpu", flags=flags, isa_cap="")[1]
    assert ("no bf16 arithmetic" in reason) is (not has)


def test_a_onednn_cap_below_amx_counts_as_no_amx():
    assert resolve_precision("auto", "cpu", flags=AMX, isa_cap="AVX512_CORE_BF16").name == "fp32"
    assert resolve_precision("auto", "cpu", flags=AMX, isa_cap="AVX512_CORE_AMX").name == "bf16"
    assert resolve_precision("auto", "cpu", flags=AMX, isa_cap="ALL").name == "bf16"


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_on_cuda_follows_native_bf16(native, expected):
    chosen = resolve_precision("auto", torch.device("cuda"), cuda_bf16=native)
    assert chosen.name == expected
    assert fast_bf16(torch.device("cuda"), cuda_bf16=native)[0] is native


def test_explicit_precisions_are_honoured_and_a_slow_bf16_says_so():
    assert resolve_precision("fp32", "cpu", flags=AMX).name == "fp32"
    slow = resolve_precision("bf16", "cpu", flags=AVX2)
    assert slow.name == "bf16" and "slow" in slow.reason
    assert resolve_precision("bf16", "cpu", flags=AMX).reason == "asked for"
    assert resolve_precision("auto", "cpu").as_dict()["requested"] == "auto"  # this machine: either answer


def test_cpu_flags_are_read_from_the_machine():
    flags = runtime.cpu_flags()
    assert isinstance(flags, frozenset)
    if flags:  # Linux: /proc/cpuinfo lists the flags
        assert resolve_precision("auto", "cpu").name == ("bf16" if {"amx_bf16", "amx_tile"} <= flags
                                                         and not runtime.onednn_isa_cap() else "fp32")


@pytest.mark.parametrize("bad", ["bfloat16", "fp16", "FP32", "", None, 16])
def test_invalid_precisions_are_rejected_with_the_choices(bad):
    with pytest.raises(ValueError, match=r"precision .*valid choices: 'auto', 'bf16', 'fp32'"):
        resolve_precision(bad)
    with pytest.raises(ValueError, match="precision"):
        RunOptions(precision=bad if bad is not None else "none")


def test_the_preset_key_is_validated():
    preset = get_preset("soft")
    preset["unsupervised"]["precision"] = "half"
    with pytest.raises(ValueError, match=r"unsupervised\.precision = 'half'.*valid choices") as error:
        resolve_preset(preset)
    assert all(repr(choice) in str(error.value) for choice in PRECISIONS)
    preset["unsupervised"]["precision"] = "fp32"
    assert resolve_preset(preset)["unsupervised"]["precision"] == "fp32"


def test_the_cli_rejects_an_invalid_precision(capsys):
    for command in ("reproduce", "bench"):
        with pytest.raises(SystemExit) as exit_info:
            cli_main([command, "--preset", "soft", "--precision", "half"])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "--precision" in err and "'half'" in err and all(p in err for p in PRECISIONS)


def test_kernel_choice_per_device_and_fan_in():
    assert low_precision_kernel("cpu", 75) == "conv"  # SoftHebb's conv1 (3·5·5)
    assert low_precision_kernel("cpu", 864) == "matmul"  # conv2 (96·3·3)
    assert low_precision_kernel("cuda", 3456) == "conv"  # cuDNN on the GPU


# ----- fp32 products from patches: wide learning layers on the CPU ------------------------------------------
def _wide_layer(fan_in_channels=256, **options):  # 256·3·3 = 2,304 inputs a filter: from FP32_MATMUL_MIN_FAN_IN up
    return HebbianConv2d(fan_in_channels, 6, 3, padding=1, padding_mode="reflect", init="unit_norm",
                         update_norm="none", generator=torch.Generator().manual_seed(3), **options)


def test_fp32_kernel_choice_wide_learning_cpu_layers_only():
    assert layers_module.FP32_MATMUL_MIN_FAN_IN == 2048
    wide, narrow = _wide_layer(), _wide_layer(227)  # 2,304 and 2,043 inputs a filter
    x = torch.zeros(1, 256, 6, 6)
    assert wide.train()._low_precision_kernel(x) == "matmul"
    assert narrow.train()._low_precision_kernel(x[:, :227]) is None
    assert wide.eval()._low_precision_kernel(x) is None  # frozen: the convolution (the feature extraction)
    assert wide.train()._low_precision_kernel(x.to("meta")) is None  # not the CPU: cuDNN's convolutions
    wide.fp32_kernel = "conv"
    assert wide._low_precision_kernel(x) is None
    narrow.fp32_kernel = "matmul"
    assert narrow._low_precision_kernel(x[:, :227]) == "matmul"
    wide.fp32_kernel = "gemm"
    with pytest.raises(ValueError, match="'gemm'.*None, 'conv', 'matmul'"):
        wide(x)


@pytest.mark.parametrize("rule, competition", [("softhebb", {"temperature": 0.7}), ("instar", {})],
                         ids=["softhebb_soft_wta", "instar_hard_wta"])
def test_fp32_products_from_patches_match_the_loop_reference(rule, competition, monkeypatch):
    """A wide learning layer (fp32, CPU) forms u and ΔW from explicit patches (spied on); both, and the weights
    after each step, agree with the float64 loop reference to fp32's rounding over 2,304-term sums (a wrong
    sign, transposition or factor is off by order 1)."""
    calls = []

    def spy(*args):
        calls.append(1)
        return hebbian_term_from_patches(*args)

    monkeypatch.setattr(layers_module, "hebbian_term_from_patches", spy)
    name = "soft_wta" if competition else "hard_wta"
    layer = _wide_layer(rule={"name": rule}, competition={"name": name, **competition}).train()
    reference = ref.ReferenceLayer(layer.weight.double(), padding=1, padding_mode="reflect", rule=rule,
                                   competition=name, competition_options=competition)
    generator = torch.Generator().manual_seed(4)
    for _ in range(2):
        x = torch.randn(2, 256, 5, 6, generator=generator)
        with torch.no_grad():
            u = layer(x)
        u_ref, _, _ = reference.step(x.double())
        for actual, expected in ((u, u_ref), (layer.delta_w, reference.delta_w)):
            scale = float(expected.abs().max())
            assert float((actual.double() - expected).abs().max()) <= 2e-5 * scale
            assert float((-actual.double() - expected).abs().max()) > 0.5 * scale  # the check sees a sign
        layer.apply_update(0.05)
        reference.apply(0.05)
        assert float((layer.weight.detach().double() - reference.weight).abs().max()) <= 1e-5
    assert len(calls) == 2


def test_backprop_through_fp32_patch_products_gives_the_convolutions_gradients():
    """The hybrid presets backpropagate through learning layers: from patches, u and the gradients of a loss
    with respect to the input and the weights are the convolutions' up to fp32 rounding."""
    x = torch.randn(2, 256, 6, 6, generator=torch.Generator().manual_seed(5))
    results = {}
    for kernel in (None, "conv"):
        layer = _wide_layer().train()
        layer.fp32_kernel = kernel
        xi = x.clone().requires_grad_()
        u = layer(xi)
        u.square().sum().backward()
        results[kernel] = (u.detach(), xi.grad, layer.weight.grad)
    for patches, conv in zip(results[None], results["conv"]):
        assert float((patches - conv).norm() / conv.norm()) < 1e-5


# ----- the pieces of the bf16 path against independent formulations ---------------------------------------
GEOMETRIES = [  # in, out, kernel, stride, dilation, input size
    (3, 8, (5, 5), (1, 1), (1, 1), (12, 12)),
    (6, 4, (3, 2), (2, 1), (1, 2), (11, 9)),
    (5, 7, (1, 1), (1, 1), (1, 1), (4, 4)),
]


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_patches_are_the_unfolded_input(geometry):
    c_in, _, kernel, stride, dilation, size = geometry
    x = torch.randn(2, c_in, *size, dtype=torch.float64)
    patches = unfold_patches(x, kernel, stride, dilation)
    n, h, w, k = patches.shape
    expected = F.unfold(x, kernel, dilation=dilation, stride=stride)  # (N, C·kh·kw, L), ordered (C, kh, kw)
    expected = expected.view(n, c_in, kernel[0] * kernel[1], h * w).permute(0, 3, 2, 1).reshape(n, h, w, k)
    assert torch.equal(patches, expected)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_products_from_patches_equal_the_convolutions_in_the_same_dtype(geometry):
    c_in, c_out, kernel, stride, dilation, size = geometry
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, c_in, *size, dtype=torch.float64, generator=g)
    w = torch.randn(c_out, c_in, *kernel, dtype=torch.float64, generator=g)
    u = F.conv2d(x, w, stride=stride, dilation=dilation)
    r = torch.randn(u.shape, dtype=torch.float64, generator=g)
    patches = unfold_patches(x, kernel, stride, dilation)
    forward = (patches.flatten(0, 2) @ weight_matrix(w).t()).view(*patches.shape[:3], c_out).permute(0, 3, 1, 2)
    torch.testing.assert_close(forward, u, rtol=1e-12, atol=1e-12)
    term = hebbian_term_from_patches(patches, r, w.shape)  # float32 result by design
    torch.testing.assert_close(term.double(), hebbian_term(x, r, w.shape, stride, dilation), rtol=1e-6, atol=1e-5)


BF16_TERM_TOLERANCE = 1e-2  # operands rounded to 8 bits (2^-9 each), fp32 sums, the result rounded once more


@pytest.mark.parametrize("geometry", GEOMETRIES[:2])
def test_the_bf16_hebbian_term_is_within_its_rounding_of_the_exact_one(geometry):
    c_in, c_out, kernel, stride, dilation, size = geometry
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, c_in, *size, generator=g)
    u = F.conv2d(x, torch.randn(c_out, c_in, *kernel, generator=g), stride=stride, dilation=dilation)
    r = torch.softmax(u, dim=1)
    exact = hebbian_term(x.double(), r.double(), (c_out, c_in, *kernel), stride, dilation)
    low = hebbian_term_from_patches(unfold_patches(x.bfloat16(), kernel, stride, dilation), r, exact.shape)
    assert low.dtype == torch.float32
    assert float((low.double() - exact).norm() / exact.norm()) < BF16_TERM_TOLERANCE
    wrong = hebbian_term_from_patches(unfold_patches(x.bfloat16(), kernel, stride, dilation), r.flip(1), exact.shape)
    assert float((wrong.double() - exact).norm() / exact.norm()) > 10 * BF16_TERM_TOLERANCE  # the test can fail


# ----- ΔW of the presets' layers, bf16 against fp32, on real images ---------------------------------------
# max over layers of ‖ΔW_bf16 − ΔW_fp32‖ / ‖ΔW_fp32‖ for the first batch of 32 subset images (measured with
# tests' seeds: soft 0.06, hard WTA presets 0.10-0.18, Dale 0.25, presynaptic 0.41; the fp32 update of the
# next batch differs from this one's by 0.1-1.0). A bf16 rounding that flips a hard winner-take-all's near
# tie moves that position's whole contribution, hence the larger values of the hard presets. Bounds with
# margin; a wrong update (another layer's, or fp32 of another batch) is far outside them for the soft rule.
DELTA_TOLERANCE = {"soft": 0.12, "softhebb_paper": 0.12, "presynaptic": 0.6, "dale": 0.4}
DELTA_TOLERANCE_DEFAULT = 0.3
LINEAR_PRESETS = [name for name in list_presets() if get_preset(name)["supervised"]["mode"] == "linear"]
# bf16 does not follow fp32 here: hard winner-take-all deep in the net, where the winners bf16 flips change the
# next layers' inputs (measured: miconi_wta conv2 0.40, conv3 1.01; manzali_5 conv4 0.32, fc5 0.74; manzali_4
# conv3 0.41 since its N(0, 1) initialisation). Strict xfail: these presets need fp32 (the default), and the
# test says so if that ever changes.
BF16_UNSUITABLE = {"miconi_wta", "manzali_4", "manzali_5"}


def _delta_w(model, x, dtype, kernel=None):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for layer in model.hebbian_layers().values():
        layer.delta_w.zero_()
        layer.low_precision_kernel = kernel
    model.train()
    with torch.no_grad(), flush_denormals(), compute_precision(model, dtype), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.features(x)
    out = {name: layer.delta_w.clone() for name, layer in model.hebbian_layers().items()}
    model.load_state_dict(state)
    for layer in model.hebbian_layers().values():
        layer.low_precision_kernel = None
    return out


@pytest.fixture(scope="module")
def subset_batches():
    out = {}
    for normalization in ("zca", "standardize", "none"):
        config = {"normalization": normalization, "zca_eps": 1e-3}
        train, _, _ = training.load_splits(config, source="subset", limit_train=200)
        out[normalization] = (train.get(slice(0, 16))[0], train.get(slice(16, 32))[0])
    return out


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason="bf16 flips hard "
                                  "winners deep in this net")) if name in BF16_UNSUITABLE else name
                                  for name in LINEAR_PRESETS])
def test_bf16_delta_w_of_every_preset_is_within_tolerance_of_fp32(name, subset_batches):
    config = resolve_preset(name)
    x, _ = subset_batches[config["data"]["normalization"]]
    torch.manual_seed(0)
    model = build_model(config)
    exact = _delta_w(model, x, torch.float32)
    tolerance = DELTA_TOLERANCE.get(name, DELTA_TOLERANCE_DEFAULT)
    for kernel in ("conv", "matmul"):  # bf16 convolutions (the GPU's; the CPU's conv1), matrix products (CPU)
        low = _delta_w(model, x, torch.bfloat16, kernel)
        for layer, delta in exact.items():
            error = float((low[layer] - delta).norm() / delta.norm().clamp_min(1e-30))
            assert error < tolerance, f"{name} {layer} ({kernel} kernel): {error:.3g} >= {tolerance}"


def test_the_soft_tolerance_separates_right_from_wrong(subset_batches):
    config = resolve_preset("soft")
    x, following = subset_batches["standardize"]
    torch.manual_seed(0)
    model = build_model(config)
    exact, other = _delta_w(model, x, torch.float32), _delta_w(model, following, torch.float32)
    for layer, delta in exact.items():
        assert float((other[layer] - delta).norm() / delta.norm()) > DELTA_TOLERANCE["soft"]


def test_the_fp32_path_is_unchanged_by_the_precision_machinery(subset_batches):
    """compute_precision(float32), the flush and channels-last are not on the fp32 path: the same bits as a
    layer that never heard of them (the conv2d_weight engine, checked against the reference elsewhere, and
    for conv3's 3,456 inputs the fp32 patch products, checked above)."""
    x = subset_batches["standardize"][0][:4]
    torch.manual_seed(0)
    model = build_model(resolve_preset("soft"))
    model.train()
    with torch.no_grad():
        model.features(x)
    plain = {name: layer.delta_w.clone() for name, layer in model.hebbian_layers().items()}
    for layer in model.hebbian_layers().values():
        layer.delta_w.zero_()
    assert all(torch.equal(a, plain[n]) for n, a in _delta_w(model, x, torch.float32).items())


def test_compute_precision_restores_each_layer():
    layer = HebbianConv2d(3, 4, 3)
    layer.compute_dtype = torch.bfloat16
    other = HebbianConv2d(3, 4, 3)
    model = torch.nn.Sequential(layer, other)
    with compute_precision(model, torch.float32):
        assert layer.compute_dtype == other.compute_dtype == torch.float32
    assert layer.compute_dtype == torch.bfloat16 and other.compute_dtype == torch.float32
    assert "compute_dtype" not in other.__dict__
    with pytest.raises(ValueError, match="float32 or torch.bfloat16"):
        compute_precision(model, torch.float16)


@pytest.mark.parametrize("make", [
    lambda: HebbianLinear(144, 12, rule="softhebb", competition="soft_wta", init="kaiming_uniform"),
    lambda: HebbianConv2d(16, 8, 3, stride=2, dilation=2, padding=2, rule="oja", competition="hard_wta"),
    lambda: HebbianConv2d(32, 32, 3, padding=1, groups=4, rule="instar", competition="soft_wta"),  # fp32 fallback
], ids=["linear", "strided-dilated", "grouped"])
def test_other_layer_shapes_follow_fp32_in_bf16(make):
    torch.manual_seed(0)
    layer = make()
    x = torch.randn(32, *((layer.in_features,) if isinstance(layer, HebbianLinear) else (layer.in_channels, 12, 12)))
    deltas = []
    for dtype in (torch.float32, torch.bfloat16):
        layer.delta_w.zero_()
        with compute_precision(layer, dtype), torch.no_grad():
            layer(x)
        deltas.append(layer.delta_w.clone())
    error = float((deltas[1] - deltas[0]).norm() / deltas[0].norm())
    assert error < 0.05  # measured 0.004 (linear, soft) and 0.02 (hard WTA) on these random inputs
    if layer.groups > 1:
        assert error == 0.0  # grouped layers compute in fp32 whatever the setting
    else:
        assert error > 0.0  # fan-in 144 from 128 up: bf16 products


@pytest.mark.parametrize("in_channels, kernel, exact", [(3, 5, True), (1, 5, True), (5, 5, True), (6, 5, False),
                                                          (16, 3, False)])
def test_image_facing_layers_keep_fp32_products_in_bf16(in_channels, kernel, exact):
    """Below a fan-in of BF16_MIN_FAN_IN (128) a layer's products stay fp32 in a bf16 run: its response and
    ΔW are those of fp32 bit for bit (3·5·5 = 75, 1·5·5, 5·5·5 = 125); from 128 up (6·5·5 = 150, 16·3·3 = 144)
    they are bf16 products and differ."""
    from hebblib.update import BF16_MIN_FAN_IN

    assert BF16_MIN_FAN_IN == 128
    torch.manual_seed(0)
    layer = HebbianConv2d(in_channels, 8, kernel, padding=2, rule="softhebb", competition="soft_wta")
    x = torch.randn(4, in_channels, 12, 12)
    out = []
    for dtype in (torch.float32, torch.bfloat16):
        layer.delta_w.zero_()
        with compute_precision(layer, dtype), torch.no_grad():
            u = layer(x)
        out.append((u, layer.delta_w.clone()))
    (u32, d32), (u16, d16) = out
    assert (torch.equal(u32, u16) and torch.equal(d32, d16)) == exact


def test_precision_labels_tell_the_first_bf16_path_apart():
    from hebblib.results import precision_label

    assert precision_label({}) == "fp32"  # records before the setting
    assert precision_label({"precision": {"name": "bf16"}, "supervised": {"mode": "linear"}}) == "bf16 (all layers)"
    assert precision_label({"precision": {"name": "bf16", "fp32_below_fan_in": 128},
                            "supervised": {"mode": "linear"}}) == "bf16"
    assert precision_label({"precision": {"name": "bf16"}, "supervised": {"mode": "end_to_end"}}) == "bf16"


def test_bf16_layers_keep_fp32_weights_and_updates():
    layer = HebbianConv2d(16, 8, 3, padding=1, rule="softhebb", competition="soft_wta")
    with compute_precision(layer, torch.bfloat16), torch.no_grad():
        u = layer(torch.randn(4, 16, 8, 8))
    assert u.dtype == layer.weight.dtype == layer.delta_w.dtype == torch.float32
    assert layer.delta_w.abs().sum() > 0


# ----- subnormal floats -----------------------------------------------------------------------------------
@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _flush_supported():
    with flush_denormals() as supported:
        return supported


needs_flush = pytest.mark.skipif(not _flush_supported(), reason="this CPU cannot flush subnormals")
SUBNORMALS = torch.full((1 << 21,), 1e-40)  # large enough for every intra-op thread to take a share


def flushed_in_every_thread() -> bool:
    """Observed, not assumed: float32 arithmetic on subnormals gives 0 in this thread, in each intra-op
    thread (probed there), and in a parallel torch operation."""
    return denormals_flushed() and int((SUBNORMALS * 1.0).count_nonzero()) == 0


@needs_flush
def test_flush_reaches_every_thread_and_restores_nested(two_threads):
    assert not flushed_in_every_thread()
    with flush_denormals():
        assert flushed_in_every_thread()
        with flush_denormals():
            assert flushed_in_every_thread()
        assert flushed_in_every_thread()  # the inner one restored nothing
    assert not flushed_in_every_thread()
    assert int((SUBNORMALS * 1.0).count_nonzero()) == SUBNORMALS.numel()


@needs_flush
def test_flush_keeps_a_caller_state_that_was_on(two_threads):
    set_flush_denormal_everywhere(True)
    try:
        with flush_denormals():
            pass
        assert flushed_in_every_thread()
    finally:
        set_flush_denormal_everywhere(False)
    assert not flushed_in_every_thread()


class _Recorder(torch.nn.Module):
    """An identity layer that records, each time it runs, whether subnormals are flushed on every thread."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(flushed_in_every_thread())
        return x


@needs_flush
def test_the_real_phases_flush_inside_and_restore_after(two_threads):
    torch.manual_seed(0)
    model = build_model(resolve_preset("soft"))
    recorder = _Recorder()
    model.stages[0].norm = torch.nn.Sequential(recorder, model.stages[0].norm)
    train, val, test = training.load_splits({"normalization": "standardize"}, source="subset", limit_train=100,
                                              val_size=10)
    training.train_hebbian(model, train, epochs=1, batch_size=18, progress=False)
    assert recorder.seen and all(recorder.seen)
    assert not flushed_in_every_thread()
    recorder.seen.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feats = classifier.extract_features(model, val, progress=False, precision="bf16")
    assert recorder.seen and all(recorder.seen)
    assert not flushed_in_every_thread()
    head_seen = []

    class Head(torch.nn.Linear):
        def forward(self, x):
            head_seen.append(flushed_in_every_thread())
            return super().forward(x)

    head = Head(feats.shape[1], 10)
    pair = (feats, val.labels)
    classifier.train_linear_probe(head, pair, pair, pair, epochs=1, progress=False)
    assert head_seen and all(head_seen)
    assert not flushed_in_every_thread()


# ----- the run records what it used ------------------------------------------------------------------------
def test_a_run_records_its_precision_and_bf16_runs_have_their_own_folder(tmp_path):
    options = dict(quick=True, limit_train=100, limit_test=20, val_size=10, progress=False, out=tmp_path,
                   stop_after="unsupervised")
    tiny = get_preset("soft")
    low = training.run_preset(tiny, precision="bf16", **options)
    exact = training.run_preset(tiny, precision="fp32", **options)
    assert low["precision"]["name"] == "bf16" and low["precision"]["requested"] == "bf16"
    assert low["precision"]["fp32_below_fan_in"] == 128
    assert exact["precision"] == {**exact["precision"], "name": "fp32", "reason": "asked for"}
    assert "fp32_below_fan_in" not in exact["precision"]
    assert isinstance(low["precision"]["flush_denormals"], bool)
    assert low["run_dir"] != exact["run_dir"]
    assert training.run_preset(tiny, **options)["precision"]["requested"] == "fp32"  # the preset's default


def test_keep_freed_memory_is_applied_once_and_can_be_turned_off(monkeypatch):
    import platform

    from hebblib import runtime

    monkeypatch.setattr(runtime, "_allocator_state", None)
    monkeypatch.setenv(runtime.KEEP_MEMORY_ENV, "0")
    assert runtime.keep_freed_memory() == f"off ({runtime.KEEP_MEMORY_ENV}=0)"
    monkeypatch.setattr(runtime, "_allocator_state", None)
    monkeypatch.delenv(runtime.KEEP_MEMORY_ENV)
    state = runtime.keep_freed_memory()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert state == "kept"
    monkeypatch.setenv(runtime.KEEP_MEMORY_ENV, "0")  # decided once per process: a later change is not seen
    assert runtime.keep_freed_memory() == state


def test_flush_denormals_also_keeps_freed_memory(monkeypatch):
    from hebblib import runtime

    monkeypatch.setattr(runtime, "_allocator_state", None)
    monkeypatch.delenv(runtime.KEEP_MEMORY_ENV, raising=False)
    with runtime.flush_denormals():
        assert runtime._allocator_state is not None


def test_compute_precision_leaves_fp32_only_layers_in_fp32_and_restores_them():
    from hebblib.layers import compute_precision
    from hebblib.presets import build_model

    model = build_model(get_preset("soft"))
    layers = model.hebbian_layers()
    layers["conv2"].fp32_only = True
    with compute_precision(model, torch.bfloat16):
        assert [layer.compute_dtype for layer in layers.values()] == [torch.bfloat16, torch.float32, torch.bfloat16]
    assert all(layer.compute_dtype == torch.float32 and "compute_dtype" not in layer.__dict__
               for layer in layers.values())


# ----- bf16 products emulated in fp32 on a CPU without bf16 instructions -----------------------------------------
@pytest.fixture
def products(monkeypatch):
    """Set hebblib.update.bf16_products for one test."""
    return lambda mode: monkeypatch.setattr(update_module, "bf16_products", mode)


def test_emulation_is_chosen_only_on_a_cpu_without_bf16_instructions(products, monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(update_module, "CPU_HAS_BF16", False)
    assert update_module.emulate_bf16(cpu) and not update_module.emulate_bf16(cuda)
    monkeypatch.setattr(update_module, "CPU_HAS_BF16", True)
    assert not update_module.emulate_bf16(cpu)
    products("emulated")
    assert update_module.emulate_bf16(cpu) and update_module.emulate_bf16(cuda)
    products("native")
    assert not update_module.emulate_bf16(cpu)
    products("fast")
    with pytest.raises(ValueError, match="bf16_products 'fast'; valid choices: 'auto', 'emulated', 'native'"):
        update_module.emulate_bf16(cpu)


def _relative(a, b):
    return float((a.float() - b.float()).norm() / b.float().norm())


def test_emulated_products_are_the_native_ones_up_to_the_order_of_the_sums(products):
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(96, 300, generator=g).bfloat16(), torch.randn(300, 40, generator=g).bfloat16()
    x = torch.randn(2, 32, 9, 9, generator=g).bfloat16().contiguous(memory_format=torch.channels_last)
    w = torch.randn(16, 32, 3, 3, generator=g).bfloat16().contiguous(memory_format=torch.channels_last)
    r = torch.randn(2, 16, 7, 7, generator=g).bfloat16().contiguous(memory_format=torch.channels_last)
    results = {}
    for mode in ("native", "emulated"):
        products(mode)
        results[mode] = (update_module.bf16_matmul(a, b), update_module.bf16_conv2d(x, w),
                         update_module.bf16_hebbian_term(x, r, w.shape))
    for native, emulated in zip(*results.values()):
        assert emulated.dtype == native.dtype and emulated.shape == native.shape
        # within bf16's rounding (2⁻⁸ relative) of each other: the native kernels may round partial sums
        assert _relative(emulated, native) < 2.0**-7
    # the emulation rounds like bf16: the fp32 product of the unrounded operands is further away
    exact = a.float() @ b.float()
    assert torch.equal(results["emulated"][0], exact.bfloat16())
    assert not torch.equal(results["emulated"][0].float(), exact)
    assert results["emulated"][1].is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("kernel", ["matmul", "conv"])
def test_a_layer_learns_the_same_in_emulated_and_native_bf16(kernel, products):
    torch.manual_seed(0)
    layer = HebbianConv2d(32, 16, 3, padding=1, rule="softhebb", competition="soft_wta")
    x = torch.randn(4, 32, 8, 8)
    deltas = {}
    for mode in ("native", "emulated", "fp32"):
        products("auto" if mode == "fp32" else mode)
        layer.delta_w.zero_()
        layer.low_precision_kernel = kernel
        layer.train()
        with torch.no_grad(), compute_precision(layer, torch.float32 if mode == "fp32" else torch.bfloat16):
            layer(x)
        deltas[mode] = layer.delta_w.clone()
    close = float((deltas["emulated"] - deltas["native"]).norm() / deltas["native"].norm())
    off = float((deltas["emulated"] - deltas["fp32"]).norm() / deltas["fp32"].norm())
    assert close < 1e-2 and off > 1e-4, (close, off)  # bf16 arithmetic, not fp32's, in both
