"""HebbianConv2d / HebbianLinear as nn.Modules: saving and resuming, dtype and device moves, use in
nn.Sequential, printing, eval mode, the registries, argument validation, and the small fixed pieces
(DoG kernel, Triangle, presynaptic competition, pruning masks)."""
from __future__ import annotations

import copy
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import reference_hebbian as ref
from reference_hebbian import single_thread  # noqa: F401  (a fixture)
from hebblib import HebbianConv2d, HebbianLinear, Triangle, available_competitions, available_rules, dog_kernel
from hebblib import competitions as comp
from hebblib import rules as rl
from hebblib.presynaptic import presynaptic_weights

pytestmark = pytest.mark.usefixtures("single_thread")


def generator(seed):
    return torch.Generator().manual_seed(seed)


def batches(shape, count, seed):
    gen = generator(seed)
    return [torch.randn(*shape, generator=gen) for _ in range(count)]


# ----- state_dict: resuming mid-training is bit-identical ---------------------------------------
STATEFUL = {
    "bcm_theta": dict(rule={"name": "bcm", "theta_rate": 0.3}, competition="hard_wta"),
    "temporal_history": dict(rule="instar", competition={"name": "temporal", "window": 6}),
    "adaptive_thresholds": dict(rule="instar", competition={"name": "adaptive_threshold", "rate": 0.5}),
    "pruning_mask": dict(rule="softhebb", competition="soft_wta", prune_fraction=0.5),
    "radius_dale_presynaptic": dict(rule="softhebb", competition="soft_wta", lr_schedule="radius", dale=True,
                                    presynaptic={"kind": "softmax", "dim": "input"}),
    "surround_cosine": dict(rule="oja", competition="topk", activation="cosine_per_tap",
                            surround={"size": 3, "sigma_e": 0.8, "sigma_i": 1.1}),
}


def stateful_layer(kind, case, seed):
    if kind == "conv":
        return HebbianConv2d(3, 6, 3, padding=1, lr=0.05, generator=generator(seed), **STATEFUL[case])
    if "surround" in STATEFUL[case]:
        pytest.skip("HebbianLinear has no surround")
    return HebbianLinear(5, 6, lr=0.05, generator=generator(seed), **STATEFUL[case])


@pytest.mark.parametrize("kind", ["conv", "linear"])
@pytest.mark.parametrize("case", list(STATEFUL))
def test_state_dict_round_trip_continues_bit_identically(case, kind):
    shape = (4, 3, 5, 5) if kind == "conv" else (8, 5)
    data = batches(shape, 7, seed=1)
    original = stateful_layer(kind, case, seed=0)
    for x in data[:3]:
        original(x)
        original.apply_update()
    original(data[3])  # a pending, not yet applied ΔW is part of the state too
    assert original.delta_w.abs().max() > 0
    saved = copy.deepcopy(original.state_dict())

    resumed = stateful_layer(kind, case, seed=123)  # same arguments, different initial weights / mask
    assert not torch.equal(resumed.weight, original.weight)
    resumed.load_state_dict(saved)
    for x in data[4:]:
        for layer in (original, resumed):
            layer.apply_update()
            layer(x)
    original_state, resumed_state = original.state_dict(), resumed.state_dict()
    assert original_state.keys() == resumed_state.keys()
    for key, value in original_state.items():
        assert torch.equal(value, resumed_state[key]), key


def test_state_dict_holds_every_piece_of_state():
    layer = HebbianConv2d(3, 4, 3, rule="bcm", competition={"name": "temporal", "window": 3}, prune_fraction=0.3)
    layer(torch.randn(2, 3, 5, 5))
    keys = set(layer.state_dict())
    assert {"weight", "delta_w", "num_updates", "mask", "rule.theta", "competition.history"} <= keys
    adaptive = HebbianLinear(3, 2, competition="adaptive_threshold")
    adaptive(torch.randn(4, 3))
    assert "competition.threshold" in adaptive.state_dict()


# ----- dtype, device, Sequential, repr, eval ----------------------------------------------------
def test_to_float64_moves_parameters_and_buffers():
    layer = HebbianConv2d(3, 4, 3, rule="bcm", competition="soft_wta", prune_fraction=0.2)
    layer(torch.randn(2, 3, 5, 5))
    layer = layer.to(torch.float64)
    for name, tensor in [*layer.named_parameters(), *layer.named_buffers()]:
        if tensor.is_floating_point():
            assert tensor.dtype == torch.float64, name
    out = layer(torch.randn(2, 3, 5, 5, dtype=torch.float64))
    assert out.dtype == torch.float64 and layer.delta_w.dtype == torch.float64
    layer.apply_update()
    assert layer.weight.dtype == torch.float64


def test_inside_sequential_every_layer_learns():
    net = nn.Sequential(
        nn.BatchNorm2d(3, affine=False), HebbianConv2d(3, 8, 5, padding=2, rule="softhebb", competition="soft_wta"),
        Triangle(0.7), nn.MaxPool2d(4, 2, 1),
        nn.BatchNorm2d(8, affine=False), HebbianConv2d(8, 16, 3, padding=1, rule="instar"), Triangle(1.4),
        nn.AvgPool2d(2, 2), nn.Flatten(), HebbianLinear(16 * 2 * 2, 5, rule="oja"),
    )
    out = net(torch.randn(4, 3, 8, 8))
    assert out.shape == (4, 5)
    hebbian = [m for m in net if isinstance(m, (HebbianConv2d, HebbianLinear))]
    assert all(m.delta_w.abs().max() > 0 for m in hebbian)
    before = [m.weight.detach().clone() for m in hebbian]
    for m in hebbian:
        m.apply_update()
    assert all(not torch.equal(b, m.weight) for b, m in zip(before, hebbian))


def test_repr_names_rule_competition_and_settings():
    text = repr(HebbianConv2d(3, 96, 5, padding=2, rule="softhebb", competition={"name": "soft_wta",
                                                                                  "temperature": 2.0},
                              lr_schedule="radius", lr=0.08, padding_mode="reflect"))
    for piece in ("HebbianConv2d(", "3, 96, kernel_size=(5, 5)", "padding=(2, 2)", "padding_mode='reflect'",
                  "lr=0.08", "lr_schedule='radius'", "update_norm='global_max'", "SoftHebbRule", "SoftWTA",
                  "temperature=2"):
        assert piece in text, piece
    text = repr(HebbianLinear(10, 4, rule={"name": "bcm", "theta_rate": 0.2}, competition={"name": "krotov", "k": 3}))
    for piece in ("in_features=10", "out_features=4", "BCM(theta_rate=0.2", "KrotovRanking(k=3"):
        assert piece in text, piece


@pytest.mark.parametrize("kind", ["conv", "linear"])
def test_eval_mode_and_frozen_layers_make_no_update(kind):
    spec = dict(rule="bcm", competition={"name": "temporal", "window": 4})
    layer = HebbianConv2d(3, 4, 3, **spec) if kind == "conv" else HebbianLinear(3, 4, **spec)
    x = torch.randn(2, 3, 5, 5) if kind == "conv" else torch.randn(2, 3)
    layer.eval()
    out = layer(x)
    assert not layer.delta_w.any()
    assert layer.rule.theta.numel() == 0 and layer.competition.history.numel() == 0
    layer.train()
    layer.plastic = False
    assert torch.equal(layer(x), out)
    assert not layer.delta_w.any()
    layer.plastic = True
    layer(x)
    assert layer.delta_w.any()


# ----- registries -------------------------------------------------------------------------------
def test_registries_are_listed_completely():
    assert available_rules() == sorted(rl.RULES)
    assert available_competitions() == sorted(comp.COMPETITIONS)
    assert "hard_wta" in available_competitions() and "softhebb" in available_rules()


@pytest.mark.parametrize("competition", available_competitions())
@pytest.mark.parametrize("rule", available_rules())
def test_every_listed_name_constructs_and_learns(rule, competition):
    layer = HebbianConv2d(3, 8, 3, padding=1, rule=rule, competition=competition, generator=generator(2))
    layer(torch.randn(2, 3, 5, 5, generator=generator(3)))
    layer.apply_update()
    assert torch.isfinite(layer.weight).all()
    assert layer.rule.name == rule and layer.competition.name == competition


# ----- validation -------------------------------------------------------------------------------
@pytest.mark.parametrize("argument, value, listed", [
    ("rule", "hebbb", "'instar'"),
    ("competition", "hardwta", "'soft_wta'"),
    ("activation", "cos", "'cosine_per_tap'"),
    ("update_norm", "max", "'per_filter'"),
    ("padding_mode", "symmetric", "'reflect'"),
    ("lr_schedule", "cosine", "'radius'"),
    ("competition_over", "time", "'space'"),
    ("update_via", "autograd", "'surrogate'"),
])
def test_unknown_names_are_rejected_with_the_choices(argument, value, listed):
    with pytest.raises(ValueError) as caught:
        HebbianConv2d(3, 4, 3, **{argument: value})
    message = str(caught.value)
    assert repr(value) in message and listed in message and "valid choices" in message


def test_linear_rejects_unknown_names_too():
    with pytest.raises(ValueError, match="'nope'.*valid choices"):
        HebbianLinear(3, 4, rule="nope")
    with pytest.raises(ValueError, match="'nope'.*valid choices"):
        HebbianLinear(3, 4, competition={"name": "nope"})


@pytest.mark.parametrize("kwargs, match", [
    ({"competition": {"name": "soft_wta", "temperature": -1.0}}, "temperature"),
    ({"competition": {"name": "soft_wta", "temperature": 0.0}}, "temperature"),
    ({"competition": {"name": "soft_wta", "inverse_temperature": -2.0}}, "inverse_temperature"),
    ({"competition": {"name": "hard_wta", "k": 5}}, "at least 5"),
    ({"competition": {"name": "topk"}}, "at least 5"),  # default k = 5 > 4 channels
    ({"competition": {"name": "krotov", "k": 6}}, "at least 6"),
    ({"competition": {"name": "krotov", "k": 1}}, "k must be an int >= 2"),
    ({"competition": {"name": "krotov", "delta": -0.1}}, "delta"),
    ({"competition": {"name": "hard_wta", "k": 0}}, "k must be an int >= 1"),
    ({"competition": {"name": "temporal", "window": 0}}, "window"),
    ({"rule": {"name": "bcm", "theta_rate": 0.0}}, "theta_rate"),
    ({"lebesgue_p": 0.5}, "lebesgue_p"),
    ({"lr": -0.1}, "lr"),
    ({"surround": {"size": 5, "sigma_e": 1.4, "sigma_i": 1.4}}, "sigma_i"),
    ({"surround": {"size": 5, "sigma_e": 1.4, "sigma_i": 1.2}}, "sigma_i"),
    ({"surround": {"size": 4}}, "odd"),
    ({"prune_fraction": 1.0}, "prune fraction"),
    ({"prune_fraction": 1.5}, "prune fraction"),
    ({"prune_fraction": -0.2}, "prune fraction"),
    ({"rule": "softhebb", "update_via": "surrogate"}, "surrogate"),
    ({"rule": "bcm", "update_via": "surrogate"}, "'bcm'"),
    ({"presynaptic": {"kind": "relu"}}, "presynaptic kind"),
    ({"presynaptic": {"dim": "time"}}, "presynaptic dim"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HebbianConv2d(3, 4, 3, **kwargs)


def test_k_is_checked_against_units_per_group():
    HebbianConv2d(4, 8, 3, groups=2, competition={"name": "hard_wta", "k": 4})
    with pytest.raises(ValueError, match="at least 5"):
        HebbianConv2d(4, 8, 3, groups=2, competition={"name": "hard_wta", "k": 5})
    with pytest.raises(ValueError, match="at least 4"):
        HebbianLinear(5, 3, competition={"name": "topk", "k": 4})


def test_sanger_needs_groups_one():
    with pytest.raises(ValueError, match="sanger.*groups=1"):
        HebbianConv2d(4, 4, 3, groups=2, rule="sanger")


def test_bad_rule_options_name_the_option_the_rule_and_the_valid_ones():
    with pytest.raises(ValueError, match="unknown option 'theta' for rule 'bcm'; valid options: .*'theta_init'"):
        HebbianConv2d(3, 4, 3, rule={"name": "bcm", "theta": 2})
    with pytest.raises(ValueError, match="unknown option 'window' for competition 'hard_wta'; valid options: "):
        HebbianConv2d(3, 4, 3, competition={"name": "hard_wta", "window": 5})


def test_structure_arguments_are_checked():
    with pytest.raises(ValueError, match="divisible by groups"):
        HebbianConv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="in_channels"):
        HebbianConv2d(0, 4, 3)
    with pytest.raises(ValueError, match="padding"):
        HebbianConv2d(3, 4, 3, padding="same")
    with pytest.raises(ValueError, match="out_features"):
        HebbianLinear(3, 0)


@pytest.mark.parametrize("shape", [(2, 4, 5, 5), (3, 5, 5), (2, 3, 5, 5, 1)])
def test_conv_rejects_wrong_input_shape(shape):
    layer = HebbianConv2d(3, 4, 3)
    with pytest.raises(ValueError, match=re.escape(str(shape))):
        layer(torch.randn(*shape))


@pytest.mark.parametrize("shape", [(2, 4), (2, 3, 1), (3,)])
def test_linear_rejects_wrong_input_shape(shape):
    layer = HebbianLinear(3, 4)
    with pytest.raises(ValueError, match=re.escape(str(shape))):
        layer(torch.randn(*shape))


# ----- the fixed pieces ---------------------------------------------------------------------------
SPEC_DOG = torch.tensor([  # Nimmo §1.16, (5, 1.2, 1.4)
    [-0.1254, -0.1093, -0.0583, -0.1093, -0.1254],
    [-0.1093, 0.2196, 0.5178, 0.2196, -0.1093],
    [-0.0583, 0.5178, 1.0000, 0.5178, -0.0583],
    [-0.1093, 0.2196, 0.5178, 0.2196, -0.1093],
    [-0.1254, -0.1093, -0.0583, -0.1093, -0.1254],
])


def test_dog_kernel_matches_the_spec_table():
    kernel = dog_kernel(5, 1.2, 1.4)
    torch.testing.assert_close(kernel, SPEC_DOG, rtol=0, atol=1e-3)
    assert float(kernel.sum()) == pytest.approx(2.3407, abs=1e-3)
    torch.testing.assert_close(kernel.double(), ref.dog_kernel(5, 1.2, 1.4), rtol=0, atol=1e-6)


@pytest.mark.parametrize("size, sigma_e, sigma_i, centre_row_next, corner, total", [
    (5, 1.2, 1.3, (0.4921, -0.0782), None, 1.961),  # [R-code] conv1 (spec §1.16 table)
    (3, 1.0, 1.2, (0.379,), 0.0691, 2.792),
    (3, 0.8, 1.1, (0.2291,), -0.0464, 1.731),
])
def test_dog_kernel_per_layer_values(size, sigma_e, sigma_i, centre_row_next, corner, total):
    kernel = dog_kernel(size, sigma_e, sigma_i)
    c = size // 2
    assert float(kernel[c, c]) == 1.0
    for offset, value in enumerate(centre_row_next, start=1):
        assert float(kernel[c, c + offset]) == pytest.approx(value, abs=1e-3)
        assert float(kernel[c, c - offset]) == pytest.approx(value, abs=1e-3)
    if corner is not None:
        assert float(kernel[0, 0]) == pytest.approx(corner, abs=1e-3)
    assert float(kernel.sum()) == pytest.approx(total, abs=2e-3)


@pytest.mark.parametrize("power", [0.7, 1.0, 1.4])
def test_triangle_is_relu_of_centred_activity_to_the_power(power):
    u = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    expected = torch.zeros_like(u)
    for n in range(2):
        for h in range(3):
            for w in range(4):
                mean = float(u[n, :, h, w].mean())
                for o in range(5):
                    expected[n, o, h, w] = max(float(u[n, o, h, w]) - mean, 0.0) ** power
    torch.testing.assert_close(Triangle(power)(u), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="power"):
        Triangle(0.0)


def test_triangle_mean_is_detached():
    u = torch.randn(1, 4, 2, 2, dtype=torch.float64, requires_grad=True)
    Triangle(1.0)(u).sum().backward()
    centred = u.detach() - u.detach().mean(dim=1, keepdim=True)
    torch.testing.assert_close(u.grad, (centred > 0).double())  # no −1/C term from the mean


PRESYNAPTIC_AXES = {"output": (0,), "input": (1,), "spatial": (2, 3), "global": (0, 1, 2, 3)}


@pytest.mark.parametrize("dim", list(PRESYNAPTIC_AXES))
@pytest.mark.parametrize("kind", ["lp_norm", "softmax", "linear"])
def test_presynaptic_competition_normalises_along_its_dims(kind, dim):
    weight = torch.randn(3, 4, 2, 3, dtype=torch.float64)
    out = presynaptic_weights(weight, kind, dim)
    axes = PRESYNAPTIC_AXES[dim]
    if kind == "lp_norm":  # eq 42: unit L2 norm along the dims
        total = out.pow(2).sum(dim=axes)
    else:  # eq 41 softmax sums to 1; eq 40 linear sums to Σm/(Σm + ε) ≈ 1
        total = out.sum(dim=axes)
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=1e-6)
    assert float(out.min()) >= 0
    torch.testing.assert_close(out, ref.presynaptic(weight, kind, dim), rtol=1e-9, atol=1e-12)


def test_presynaptic_makes_small_weights_strong():
    weight = torch.tensor([0.1, 0.5, 2.0], dtype=torch.float64).view(1, 3, 1, 1)
    for kind in ("lp_norm", "softmax", "linear"):
        out = presynaptic_weights(weight, kind, "input").flatten()
        assert out[0] > out[1] > out[2], kind  # m = 1/(|w| + ε), eq 39


@pytest.mark.parametrize("fraction", [0.3, 0.7, 0.9])
def test_pruning_mask_fraction_and_masked_weights_stay_zero(fraction):
    layer = HebbianConv2d(3, 16, 3, padding=1, rule="instar", competition="soft_wta", prune_fraction=fraction,
                          generator=generator(4))
    zeros = 1 - float(layer.mask.mean())
    assert zeros == pytest.approx(fraction, abs=0.06)
    assert torch.equal(layer.weight == 0, layer.mask == 0)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    for step, x in enumerate(batches((2, 3, 5, 5), 6, seed=5)):
        layer(x)
        if step % 2:
            layer.apply_update()
        else:
            layer.hebbian_grad()
            optimizer.step()
            layer.after_step()
        assert not layer.weight[layer.mask == 0].any()
    assert layer.weight[layer.mask == 1].abs().min() > 0


def test_renormalize_keeps_unit_norm_after_masking():
    """Miconi: mask after every step, then rescale each unit to norm 1."""
    layer = HebbianConv2d(3, 8, 3, rule="instar", competition={"name": "hard_wta", "binary": True},
                          prune_fraction=0.5, renormalize=True, generator=generator(8))
    for x in batches((2, 3, 5, 5), 3, seed=9):
        layer(x)
        layer.apply_update()
        norms = layer.weight.detach().flatten(1).norm(dim=1)
        torch.testing.assert_close(norms, torch.ones(8), rtol=0, atol=1e-5)
        assert not layer.weight[layer.mask == 0].any()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.cuda
@pytest.mark.parametrize("rule, competition", [("softhebb", "soft_wta"), ("instar", "hard_wta"), ("bcm", "topk"),
                                               ("sanger", "none"), ("oja", "krotov")])
def test_cpu_and_cuda_give_the_same_update(rule, competition):
    cpu = HebbianConv2d(3, 8, 3, padding=1, stride=2, rule=rule, competition=competition, generator=generator(6),
                        update_norm="none").double()
    cuda = copy.deepcopy(cpu).cuda()
    for x in batches((4, 3, 9, 9), 3, seed=7):
        x = x.double()
        torch.testing.assert_close(cuda(x.cuda()).cpu(), cpu(x), rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(cuda.delta_w.cpu(), cpu.delta_w, rtol=1e-9, atol=1e-9)
        cpu.apply_update(0.01)
        cuda.apply_update(0.01)
    torch.testing.assert_close(cuda.weight.detach().cpu(), cpu.weight.detach(), rtol=1e-9, atol=1e-9)


def test_wide_layer_forward_takes_the_channels_last_path_and_agrees(monkeypatch):
    # fan-in 256·3·3 ≥ CHANNELS_LAST_MIN_FAN_IN: the CPU forward runs channels-last; same numbers, usual layout
    import hebblib.layers as layers_module

    layer = HebbianConv2d(256, 8, 3, padding=1, rule="softhebb", competition="soft_wta", activation="dot")
    assert 256 * 9 >= layers_module.CHANNELS_LAST_MIN_FAN_IN
    x = torch.randn(2, 256, 6, 6)
    with torch.no_grad():
        u = layer(x)
        monkeypatch.setattr(layers_module, "CHANNELS_LAST_MIN_FAN_IN", 10**9)
        reference = layer(x)
    assert u.is_contiguous()
    torch.testing.assert_close(u, reference, rtol=1e-4, atol=1e-4)  # fp32 sums of 2,304 terms


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_lower_median_is_torch_median_with_ties_and_nan(dtype):
    """The CPU selection behind the temporal threshold gives torch.median's values: the lower of the two
    middle values for an even count, ties, NaN in a column, one sample, float64 kept in float64."""
    from hebblib.competitions import lower_median
    g = torch.Generator().manual_seed(0)
    for shape in [(500, 6, 4, 4), (64, 3, 5), (1, 7), (2, 9), (7, 2, 3)]:
        for x in (torch.randn(shape, generator=g, dtype=torch.float64).to(dtype),
                  torch.randint(0, 4, shape, generator=g).to(dtype)):  # many exact ties
            assert torch.equal(lower_median(x), x.median(dim=0).values)
            assert lower_median(x).dtype == dtype
        x = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
        x.view(shape[0], -1)[-1, 0] = float("nan")
        got, want = lower_median(x).reshape(-1), x.median(dim=0).values.reshape(-1)
        assert torch.isnan(got[0]) and torch.isnan(want[0]) and torch.equal(got[1:], want[1:])
    x = torch.tensor([[1.0, 5.0], [4.0, 2.0], [3.0, 3.0], [2.0, 4.0]], dtype=dtype)
    assert lower_median(x).tolist() == [2.0, 3.0]  # sorted columns 1 2 3 4 and 2 3 4 5: element 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_channel_argmax_is_argmax_with_ties_and_nan(dtype):
    from hebblib.competitions import channel_argmax
    g = torch.Generator().manual_seed(0)
    for shape in [(4, 96, 8, 8), (3, 5, 2, 2), (6, 7)]:
        u = torch.randint(0, 3, shape, generator=g).to(dtype)  # many exact ties
        if dtype != torch.bfloat16:
            u[0, 2] = float("nan")  # a NaN wins, as argmax's
        assert torch.equal(channel_argmax(u), u.argmax(dim=1, keepdim=True))
        v = torch.randn(shape, generator=g).to(dtype)
        assert torch.equal(channel_argmax(v), v.argmax(dim=1, keepdim=True))
