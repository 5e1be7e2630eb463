"""The engine's update against the explicit-loop reference (tests/reference_hebbian.py).

Every rule x every competition, the convolution geometries (stride, padding modes, dilation, groups,
depthwise, 1x1, rectangular kernels, HebbianLinear), the effective-weight options, the update
normalisations, and the ways an update is applied (apply_update, the radius schedule, hebbian_grad + SGD,
alpha mixing with a backprop gradient). All in float64, compared to 1e-9 (float64 rounding of these sums
is ~1e-15; a wrong factor, index or sign is off by far more). The reference pads on its own (explicit index
arithmetic), so a padding bug in the library cannot hide in both.
"""
from __future__ import annotations

import math

import pytest
import torch

import reference_hebbian as ref
from reference_hebbian import single_thread  # noqa: F401  (a fixture)
from hebblib import HebbianConv2d, HebbianLinear, available_competitions, available_rules
from hebblib import competitions as comp
from hebblib import rules as rl
from hebblib.update import hebbian_term, unfold_hebbian_term

pytestmark = pytest.mark.usefixtures("single_thread")


def assert_close(actual, expected, tol=1e-9):
    """Equal to ``tol`` relative to the larger of 1 and the biggest expected entry."""
    scale = 1.0 + float(expected.abs().max()) if expected.numel() else 1.0
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol * scale)


def generator(seed):
    return torch.Generator().manual_seed(seed)


def inputs(shape, seed):
    return torch.randn(*shape, generator=generator(seed), dtype=torch.float64)


RULE_OPTIONS = {"bcm": {"theta_rate": 0.3, "theta_init": 0.5}}

# (case id, competition name, options): every registered competition, and its main switches.
COMPETITION_CASES = [
    ("none", "none", {}),
    ("hard_wta", "hard_wta", {}),
    ("hard_wta_binary", "hard_wta", {"binary": True}),
    ("topk", "topk", {"k": 3}),
    ("topk_binary", "topk", {"k": 2, "binary": True}),
    ("anti_wta", "anti_wta", {}),
    ("soft_wta", "soft_wta", {"temperature": 0.7}),
    ("soft_wta_no_anti", "soft_wta", {"inverse_temperature": 2.0, "anti_hebbian": False}),
    ("krotov", "krotov", {"k": 3, "delta": 0.3}),
    ("temporal", "temporal", {"window": 3}),
    ("temporal_square_k2", "temporal", {"window": 5, "k": 2, "square_winner": True}),
    ("statistical", "statistical", {"k_std": 0.5}),
    ("statistical_square_k2", "statistical", {"k_std": 0.2, "k": 2, "square_winner": True}),
    ("adaptive_threshold", "adaptive_threshold", {"rate": 0.5}),
    ("adaptive_threshold_values_k2", "adaptive_threshold", {"k": 2, "rate": 0.5, "binary": False}),
]
STATELESS = [case for case in COMPETITION_CASES
             if case[1] in ("none", "hard_wta", "topk", "anti_wta", "soft_wta", "krotov")]


def rule_spec(rule):
    return {"name": rule, **RULE_OPTIONS.get(rule, {})}


def test_cases_cover_every_registered_rule_and_competition():
    assert {name for _, name, _ in COMPETITION_CASES} == set(available_competitions())
    assert set(available_rules()) == {"hebb", "anti_hebb", "instar", "oja", "softhebb", "sanger", "bcm"}


# ----- the vectorised Hebbian term itself -------------------------------------------------------
@pytest.mark.parametrize("stride, dilation, groups, kernel", [
    (1, 1, 1, (3, 3)), (2, 1, 1, (3, 3)), (1, 2, 1, (3, 3)), ((2, 1), (1, 2), 1, (2, 3)), (1, 1, 2, (3, 3)),
    (2, 2, 2, (2, 2)),
])
def test_hebbian_term_matches_loops(stride, dilation, groups, kernel):
    x = inputs((2, 4, 8, 7), 0)
    weight_shape = (6, 4 // groups, *kernel)
    h, w = ref.grid(x, kernel, ref.pair(stride), ref.pair(dilation))
    r = inputs((2, 6, h, w), 1)
    weight = torch.zeros(weight_shape, dtype=torch.float64)
    expected = ref.hebbian_update(x, weight, r, None, stride, dilation, groups)
    assert_close(hebbian_term(x, r, weight_shape, stride, dilation, groups), expected)
    if groups == 1:  # the benchmark's naive baseline computes the same thing
        assert_close(unfold_hebbian_term(x, r, weight_shape, stride, dilation), expected)


# ----- the modules on their own -----------------------------------------------------------------
@pytest.mark.parametrize("case_id, name, options", STATELESS, ids=[c[0] for c in STATELESS])
def test_stateless_competition_module_matches_reference(case_id, name, options):
    u = inputs((3, 6, 2, 3), 2)
    y = comp.make_competition({"name": name, **options})(u)
    options = {**ref.VECTOR_DEFAULTS.get(name, {}), **options}
    assert_close(y, ref.per_site(u, ref.VECTOR_COMPETITIONS[name], **options))


def test_hard_wta_ties_go_to_the_lowest_index():
    u = torch.tensor([[1.0, 3.0, 3.0, 0.0]]).view(1, 4, 1, 1)
    assert comp.HardWTA(binary=True)(u).flatten().tolist() == [0.0, 1.0, 0.0, 0.0]


def test_stateful_competition_modules_match_reference_over_steps():
    temporal = comp.TemporalCompetition(window=4, k=1)
    adaptive = comp.AdaptiveThreshold(k=1, rate=0.7)
    history = threshold = None
    for step in range(3):  # 3 batches of 2 > window 4: the oldest samples must drop out
        u = inputs((2, 5, 2, 2), 10 + step)
        y_ref, history = ref.temporal(u, history, window=4)
        assert_close(temporal(u), y_ref)
        assert_close(temporal.history, history)
        y_ref, threshold = ref.adaptive_threshold(u, threshold, k=1, rate=0.7)
        assert_close(adaptive(u), y_ref)
        assert_close(adaptive.threshold, threshold)
    temporal, history = comp.TemporalCompetition(window=4, k=1), None
    for step, n in enumerate([3, 6, 1, 4, 2]):  # batches larger and smaller than the window, uneven
        u = inputs((n, 5, 2, 2), 20 + step)
        y_ref, history = ref.temporal(u, history, window=4)
        assert_close(temporal(u), y_ref)
        assert_close(temporal.history, history)


@pytest.mark.parametrize("rule", ["hebb", "anti_hebb", "instar", "oja", "softhebb", "sanger"])
def test_rule_factors_match_reference(rule):
    y, u = inputs((2, 4, 3, 3), 3), inputs((2, 4, 3, 3), 4)
    r, s = rl.make_rule(rule)(y, u)
    r_ref, s_ref = ref.rule_factors(rule, y, u)
    assert_close(r, r_ref)
    assert (s is None) == (s_ref is None)
    if s is not None:
        assert_close(s, s_ref)


def test_bcm_theta_is_updated_before_use():
    rule = rl.BCM(theta_rate=0.25, theta_init=2.0)
    theta = None
    for step in range(3):
        y = inputs((2, 3, 2, 2), 20 + step)
        r_ref, theta = ref.bcm(y, theta, theta_rate=0.25, theta_init=2.0)
        r, s = rule(y, y)
        assert s is None
        assert_close(r, r_ref)
        assert_close(rule.theta, theta)
    # with θ updated after use instead, step 1 would have used θ = 2 exactly
    y = inputs((2, 3, 2, 2), 20)
    fresh = rl.BCM(theta_rate=0.25, theta_init=2.0)
    assert not torch.allclose(fresh(y, y)[0], y * (y - 2.0))


# ----- a layer: every rule x every competition, over several steps ------------------------------
def run_against_reference(layer, reference, batches, lr=0.01, flatten=False):
    """Forward each batch through both, compare u and ΔW, apply the update, compare the weights."""
    for x in batches:
        u = layer(x)
        x4 = x[:, :, None, None] if flatten else x
        u_ref, _, _ = reference.step(x4)
        assert_close(u, u_ref.flatten(1) if flatten else u_ref)
        assert_close(layer.delta_w, reference.delta_w)
        layer.apply_update(lr)
        reference.apply(lr)
        assert_close(layer._weight4d(), reference.weight)


@pytest.mark.parametrize("case_id, competition, options", COMPETITION_CASES, ids=[c[0] for c in COMPETITION_CASES])
@pytest.mark.parametrize("rule", available_rules())
def test_every_rule_and_competition_matches_reference(rule, case_id, competition, options):
    layer = HebbianConv2d(3, 6, 3, padding=1, rule=rule_spec(rule), competition={"name": competition, **options},
                          init="unit_norm", update_norm="none", generator=generator(1)).double()
    reference = ref.ReferenceLayer(layer.weight, padding=1, rule=rule, rule_options=RULE_OPTIONS.get(rule),
                                   competition=competition, competition_options=options)
    run_against_reference(layer, reference, [inputs((2, 3, 4, 5), 30 + i) for i in range(2)])


# ----- geometries -------------------------------------------------------------------------------
# (in, out, kernel), layer keyword arguments, input shape, competition axis of the reference
GEOMETRIES = {
    "stride2_leftover": ((3, 4, 3), {"stride": 2}, (2, 3, 8, 7), "channels"),
    "padding1_zeros": ((3, 4, 3), {"padding": 1}, (2, 3, 4, 5), "channels"),
    "padding1_reflect": ((3, 4, 3), {"padding": 1, "padding_mode": "reflect"}, (2, 3, 4, 5), "channels"),
    "padding2_circular": ((3, 4, 3), {"padding": 2, "padding_mode": "circular"}, (2, 3, 3, 4), "channels"),
    "stride2_padding1_replicate": ((3, 4, 3), {"stride": 2, "padding": 1, "padding_mode": "replicate"},
                                   (2, 3, 5, 6), "channels"),
    "dilation2": ((3, 4, 3), {"dilation": 2}, (2, 3, 6, 7), "channels"),
    "rectangular": ((3, 4, (2, 3)), {"stride": (1, 2), "padding": (1, 0), "dilation": (2, 1)}, (2, 3, 5, 7),
                    "channels"),
    "groups2": ((4, 6, 3), {"groups": 2, "padding": 1}, (2, 4, 4, 3), "channels"),
    "depthwise": ((3, 3, 3), {"groups": 3, "padding": 1}, (2, 3, 4, 5), "space"),
    "space_groups1": ((3, 4, 3), {"competition_over": "space"}, (2, 3, 5, 4), "space"),
    "conv1x1": ((3, 5, 1), {}, (2, 3, 3, 4), "channels"),
    "linear": ((5, 4), {}, (6, 5), "channels"),
}
GEOMETRY_COMPETITIONS = [("none", {}), ("hard_wta", {}), ("hard_wta", {"binary": True}), ("topk", {"k": 2}),
                         ("anti_wta", {}), ("soft_wta", {"temperature": 0.5}), ("krotov", {"k": 2, "delta": 0.4})]


def build(geometry, rule, competition, options, seed=2, **extra):
    shape, kwargs, _, axis = GEOMETRIES[geometry]
    common = dict(rule=rule_spec(rule), competition={"name": competition, **options}, init="unit_norm",
                  generator=generator(seed), **extra)
    common.setdefault("update_norm", "none")
    if geometry == "linear":
        layer = HebbianLinear(*shape, **common).double()
        return layer, ref.ReferenceLayer(layer._weight4d(), rule=rule, rule_options=RULE_OPTIONS.get(rule),
                                         competition=competition, competition_options=options,
                                         update_norm=common["update_norm"])
    layer = HebbianConv2d(*shape, **kwargs, **common).double()
    geometry_kwargs = {k: v for k, v in kwargs.items() if k != "competition_over"}
    reference = ref.ReferenceLayer(layer.weight, **geometry_kwargs, rule=rule, rule_options=RULE_OPTIONS.get(rule),
                                   competition=competition, competition_options=options, axis=axis,
                                   update_norm=common["update_norm"],
                                   **{k: v for k, v in extra.items() if k in ("activation", "lebesgue_p", "dale",
                                                                              "weight_norm", "presynaptic",
                                                                              "surround")})
    return layer, reference


@pytest.mark.parametrize("rule", available_rules())
@pytest.mark.parametrize("geometry", list(GEOMETRIES))
def test_geometry_matches_reference(geometry, rule):
    _, _, input_shape, _ = GEOMETRIES[geometry]
    x = inputs(input_shape, 40)
    if rule == "sanger" and "groups" in GEOMETRIES[geometry][1]:  # Sanger mixes all units
        with pytest.raises(ValueError, match="groups=1"):
            build(geometry, rule, "none", {})
        return
    for competition, options in GEOMETRY_COMPETITIONS:
        layer, reference = build(geometry, rule, competition, options)
        run_against_reference(layer, reference, [x], flatten=geometry == "linear")


def test_depthwise_competes_over_space_not_channels():
    """Binary WTA over the positions of each channel: every (sample, channel) has exactly one winner, so
    Instar's decay factor Σ_{n,h,w} y is the batch size for every unit (over channels it would vary)."""
    hebb, _ = build("depthwise", "hebb", "hard_wta", {"binary": True})
    instar, _ = build("depthwise", "instar", "hard_wta", {"binary": True})
    x = inputs((2, 3, 4, 5), 41)
    hebb(x)
    instar(x)
    factor = (hebb.delta_w - instar.delta_w).flatten(1).sum(dim=1) / hebb.weight.flatten(1).sum(dim=1)
    assert_close(factor, torch.full((3,), 2.0, dtype=torch.float64), 1e-9)


# ----- effective weights and the activation options ---------------------------------------------
OPTION_CASES = {
    "cosine": {"activation": "cosine"},
    "cosine_per_tap": {"activation": "cosine_per_tap"},
    "lebesgue_p3": {"lebesgue_p": 3.0},
    "dale": {"dale": True},
    "weight_norm": {"weight_norm": True},
    "surround": {"surround": {"size": 3, "sigma_e": 0.8, "sigma_i": 1.1}},
    **{f"presynaptic_{kind}_{dim}": {"presynaptic": {"kind": kind, "dim": dim}}
       for kind in ("lp_norm", "softmax", "linear") for dim in ("spatial", "input", "output", "global")},
}


@pytest.mark.parametrize("option", list(OPTION_CASES))
def test_weight_and_activation_options_match_reference(option):
    for rule, competition, options in (("instar", "hard_wta", {}), ("softhebb", "soft_wta", {"temperature": 0.5})):
        layer, reference = build("padding1_zeros", rule, competition, options, **OPTION_CASES[option])
        run_against_reference(layer, reference, [inputs((2, 3, 4, 5), 50 + i) for i in range(2)], lr=0.05)


def test_dale_forward_and_decay_use_absolute_weights():
    """Under Dale the layer computes with |W| even when the parameter itself went negative (e.g. an
    optimiser step before ``after_step``): the reference applies |·| too."""
    layer, reference = build("padding1_zeros", "instar", "soft_wta", {"temperature": 0.5}, dale=True)
    with torch.no_grad():
        layer.weight[::2].neg_()
    reference.weight = layer.weight.detach().clone()
    assert float(layer.weight.detach().min()) < 0
    run_against_reference(layer, reference, [inputs((2, 3, 4, 5), 54)])
    assert float(layer.weight.detach().min()) >= 0


def test_cosine_per_tap_grouped_patch_norms():
    # the patch norm of a grouped layer covers only the unit's own input channels
    layer, reference = build("groups2", "instar", "hard_wta", {}, activation="cosine_per_tap")
    run_against_reference(layer, reference, [inputs((2, 4, 4, 3), 55)])


def test_statistical_double_padding_broadcasts_one_tap():
    layer = HebbianConv2d(2, 4, 3, padding=1, rule="hebb", init="unit_norm", update_norm="none",
                          competition={"name": "statistical", "k_std": 0.3, "double_padding": True},
                          generator=generator(3)).double()
    x = inputs((2, 2, 4, 4), 56)
    layer(x)
    x_padded = ref.pad(x, 1)
    sim = ref.similarity(ref.pad(x_padded, 1), layer.weight)  # padded a second time: the grid of x_padded
    r = ref.statistical(sim, k_std=0.3)
    assert_close(layer.delta_w, ref.broadcast_hebbian_term(x_padded, r, layer.weight.shape))


# ----- update normalisation ---------------------------------------------------------------------
@pytest.mark.parametrize("update_norm", ["global_max", "per_filter"])
@pytest.mark.parametrize("rule, competition", [("instar", "hard_wta"), ("softhebb", "soft_wta"), ("hebb", "none")])
def test_update_normalisation_per_batch(update_norm, rule, competition):
    layer, reference = build("padding1_zeros", rule, competition, {}, update_norm=update_norm)
    for i in range(2):  # ΔW accumulates as the sum of per-batch normalised updates
        x = inputs((2, 3, 4, 5), 60 + i)
        layer(x)
        _, _, raw = reference.step(x)
        assert not torch.allclose(raw, ref.normalize(raw, update_norm))
    assert_close(layer.delta_w, reference.delta_w)


def test_per_filter_normalisation_gives_each_unit_peak_one():
    layer, _ = build("padding1_zeros", "instar", "soft_wta", {}, update_norm="per_filter")
    layer(inputs((2, 3, 4, 5), 62))
    assert_close(layer.delta_w.abs().flatten(1).amax(dim=1), torch.ones(4, dtype=torch.float64), 1e-12)


# ----- the decay term is a SUM over batch and positions -----------------------------------------
def test_decay_sums_over_batch_and_positions():
    """Instar minus Hebb isolates the decay −(Σ_{n,h,w} y) W: the factor must be the full sum."""
    kwargs = dict(padding=1, competition={"name": "hard_wta", "binary": True}, init="unit_norm", update_norm="none")
    hebb = HebbianConv2d(3, 4, 3, rule="hebb", generator=generator(4), **kwargs).double()
    instar = HebbianConv2d(3, 4, 3, rule="instar", generator=generator(4), **kwargs).double()
    x = inputs((3, 3, 4, 5), 63)
    u = hebb(x)
    instar(x)
    decay = hebb.delta_w - instar.delta_w
    factor = decay.flatten(1).sum(dim=1) / hebb.weight.flatten(1).sum(dim=1)
    y = hebb.competition(u)
    full = y.sum(dim=(0, 2, 3))
    assert_close(factor, full, 1e-9)
    assert full.sum() == 3 * 4 * 5  # one binary winner per (sample, position)
    mean, batch_only = y.mean(dim=(0, 2, 3)), y[:, :, 0, 0].sum(dim=0)
    for wrong in (mean, batch_only, y[0].sum(dim=(1, 2)), y.sum(dim=(2, 3)).mean(0)):  # mean, batch-only, ...
        assert not torch.allclose(factor, wrong)


# ----- applying the update ----------------------------------------------------------------------
def trained_layer(cls=HebbianConv2d, **kwargs):
    if cls is HebbianConv2d:
        layer = HebbianConv2d(3, 4, 3, padding=1, rule="softhebb", competition="soft_wta", init="softhebb",
                              update_norm="none", generator=generator(5), **kwargs).double()
        layer(inputs((2, 3, 4, 5), 70))
    else:
        layer = HebbianLinear(5, 3, rule="softhebb", competition="soft_wta", init="softhebb", update_norm="none",
                              generator=generator(5), **kwargs).double()
        layer(inputs((6, 5), 70))
    return layer


@pytest.mark.parametrize("cls", [HebbianConv2d, HebbianLinear])
def test_apply_update_adds_lr_times_delta(cls):
    layer = trained_layer(cls, lr=0.03)
    before, delta = layer.weight.detach().clone(), layer.delta_w.clone().view_as(layer.weight)
    assert delta.abs().max() > 0
    layer.apply_update()
    assert_close(layer.weight.detach(), before + 0.03 * delta, 1e-12)
    assert not layer.delta_w.any() and int(layer.num_updates) == 1
    layer.delta_w.copy_(delta.view_as(layer.delta_w))
    layer.apply_update(lr=0.5)  # an explicit lr overrides the layer's
    assert_close(layer.weight.detach(), before + 0.53 * delta, 1e-12)


def test_radius_schedule_scales_each_unit():
    layer = trained_layer(lr=0.02, lr_schedule="radius")
    before, delta = layer.weight.detach().clone(), layer.delta_w.clone()
    expected = before.clone()
    for o in range(before.shape[0]):
        norm = math.sqrt(float((before[o] ** 2).sum()))
        expected[o] += 0.02 * (abs(norm - 1) + 1e-10) ** 0.5 * delta[o]
    layer.apply_update()
    assert_close(layer.weight.detach(), expected, 1e-12)


@pytest.mark.parametrize("schedule", ["constant", "radius"])
@pytest.mark.parametrize("cls", [HebbianConv2d, HebbianLinear])
def test_hebbian_grad_with_sgd_equals_apply_update(cls, schedule):
    direct, via_grad = trained_layer(cls, lr=0.04, lr_schedule=schedule), trained_layer(cls, lr=0.04,
                                                                                         lr_schedule=schedule)
    assert torch.equal(direct.delta_w, via_grad.delta_w)
    direct.apply_update()
    optimizer = torch.optim.SGD(via_grad.parameters(), lr=0.04)
    via_grad.hebbian_grad(1.0)
    assert not via_grad.delta_w.any()
    optimizer.step()
    via_grad.after_step()
    assert_close(via_grad.weight.detach(), direct.weight.detach(), 1e-12)
    assert int(via_grad.num_updates) == int(direct.num_updates) == 1


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_alpha_mixes_backprop_and_hebbian(alpha):
    layer = trained_layer()
    delta = layer.delta_w.clone()
    known = inputs(layer.weight.shape, 71)
    layer.weight.grad = known.clone()
    layer.hebbian_grad(alpha)
    assert_close(layer.weight.grad, (1 - alpha) * known - alpha * delta, 1e-12)
    no_grad = trained_layer()
    no_grad.hebbian_grad(alpha)
    assert_close(no_grad.weight.grad, -alpha * delta, 1e-12)


def test_alpha_mixing_with_a_real_backprop_gradient():
    layer = trained_layer()
    delta = layer.delta_w.clone()
    layer.eval()  # no new Hebbian update during the backprop forward
    x = inputs((2, 3, 4, 5), 72)
    layer(x).pow(2).sum().backward()
    w = layer.weight.detach().clone().requires_grad_(True)
    (bp,) = torch.autograd.grad(torch.nn.functional.conv2d(ref.pad(x, 1), w).pow(2).sum(), [w])
    assert_close(layer.weight.grad, bp, 1e-12)
    layer.hebbian_grad(0.25)
    assert_close(layer.weight.grad, 0.75 * bp - 0.25 * delta, 1e-12)


def test_alpha_outside_unit_interval_is_rejected():
    with pytest.raises(ValueError, match="alpha"):
        trained_layer().hebbian_grad(1.5)


@pytest.mark.parametrize("mode, row", [
    ("zeros", [0, 0, 1, 2, 3, 0, 0]),
    ("reflect", [3, 2, 1, 2, 3, 2, 1]),
    ("replicate", [1, 1, 1, 2, 3, 3, 3]),
    ("circular", [2, 3, 1, 2, 3, 1, 2]),
])
def test_reference_padding_by_hand_and_the_layers_padding(mode, row):
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64).view(1, 1, 1, 3).expand(1, 1, 3, 3)
    padded = ref.pad(x, (0, 2), mode)
    assert padded[0, 0, 0].tolist() == row  # the modes' definitions, written out
    layer = HebbianConv2d(1, 2, 3, padding=(1, 2), padding_mode=mode).double()
    x = inputs((2, 1, 4, 5), 3)
    assert torch.equal(layer.pad(x), ref.pad(x, (1, 2), mode))
