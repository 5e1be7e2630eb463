"""Lunelli's contrastive neuron-centric Hebbian learning (hebblib.contrastive), each against an independent
formulation: the pairwise loss by loops, autograd of the loss, finite differences through the single-forward-
pass step, the cross-entropy's own gradient, and hand-computed momentum and label-smoothing values."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hebblib import contrastive as ch
from hebblib.contrastive import (ContrastiveConv2d, ContrastiveLinear, contrastive_delta_linear, contrastive_grad,
                                 contrastive_loss, contrastive_masks, hebbian_descent_delta, train_contrastive)
from hebblib.data import DeviceDataset
from hebblib.errors import HebbianDivergenceError
from hebblib.networks.contrastive import (PARAMETER_COUNTS, ContrastiveNet, contrastive_conv, contrastive_mlp,
                                          conv_channels, fc_sizes)

D = torch.float64


def _labels(batch=12, classes=3, seed=0):
    """Labels with every class at least twice (so both masks are non-empty), shuffled."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(batch) % classes
    return labels[torch.randperm(batch, generator=g)]


def _pairwise_loss(y, labels, alpha=0.0):
    """Eq. 4.9 entry by entry with Python loops: the cosine of every pair i ≠ j, the smoothed masks
    (Eqs. 4.26–4.27) written out, the mean over the B² entries."""
    flat, batch, total = y.flatten(1), y.shape[0], 0.0
    for i in range(batch):
        for j in range(batch):
            if i == j:
                continue
            cos = float(flat[i] @ flat[j]) / ((float(flat[i].norm()) + 1e-8) * (float(flat[j].norm()) + 1e-8))
            same = bool(labels[i] == labels[j])
            positive = (1 - alpha) * same + alpha / (batch - 1)
            negative = (1 - alpha) * (not same) + alpha / (batch - 1)
            total += positive * (1 - cos) + negative * abs(cos)
    return total / batch ** 2


# ----- the loss ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_loss_is_the_pairwise_definition(alpha):
    g = torch.Generator().manual_seed(1)
    y, labels = torch.tanh(torch.randn(10, 2, 3, 3, generator=g, dtype=D)), _labels(10)
    assert contrastive_loss(y, labels, alpha).item() == pytest.approx(_pairwise_loss(y, labels, alpha), rel=1e-12)


def test_loss_targets_equal_positives_and_orthogonal_not_opposite_negatives():
    labels = torch.tensor([0, 0, 1, 1])
    ideal = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]], dtype=D)  # same class parallel
    assert contrastive_loss(ideal, labels).item() == pytest.approx(0.0, abs=1e-7)  # ε of (4.3) only
    opposite = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]], dtype=D)
    # the eight negative entries (four pairs, both orders) at cos = −1 cost |S| = 1 each: the loss wants
    # orthogonality (4.8), not opposition
    assert contrastive_loss(opposite, labels).item() == pytest.approx(8 / 16, rel=1e-7)


def test_masks_follow_eqs_4_5_to_4_27():
    labels = torch.tensor([0, 1, 0])
    pos, neg = contrastive_masks(labels, dtype=D)
    assert pos.tolist() == [[0, 0, 1], [0, 0, 0], [1, 0, 0]]
    assert neg.tolist() == [[0, 1, 0], [1, 0, 1], [0, 1, 0]]
    a = 0.2  # (1 − a)·M + a/(B − 1) off the diagonal; the diagonal stays 0
    pos, neg = contrastive_masks(labels, a, dtype=D)
    assert torch.allclose(pos, torch.tensor([[0, .1, .9], [.1, 0, .1], [.9, .1, 0]], dtype=D))
    assert torch.allclose(neg, torch.tensor([[0, .9, .1], [.9, 0, .9], [.1, .9, 0]], dtype=D))


# ----- the hand-derived local gradient (Eqs. 4.10–4.24) against autograd of Eq. 4.9 -----------------------
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_linear_local_gradient_is_autograd_of_the_loss(activation, alpha):
    g = torch.Generator().manual_seed(2)
    x, labels = torch.randn(12, 7, generator=g, dtype=D), _labels(12)
    layer = ContrastiveLinear(7, 9, activation=activation, momentum=0.0, label_smoothing=alpha, generator=g).double()
    weight = layer.weight.clone().requires_grad_(True)
    act = torch.tanh if activation == "tanh" else torch.relu
    contrastive_loss(act(x @ weight.T), labels, alpha).backward()
    layer.train()
    layer(x)
    layer.local_update(labels)  # momentum 0: the buffer is this step's ΔW
    scale = weight.grad.abs().max().item()
    assert scale > 1e-4
    assert torch.allclose(layer.momentum_buffer, -weight.grad, rtol=0, atol=1e-12 * scale)


def test_the_printed_double_tanh_derivative_would_fail_the_check():
    """The thesis' code multiplies by 1 − tanh²(tanh u); the correct factor is 1 − tanh²(u)."""
    g = torch.Generator().manual_seed(3)
    x, w, labels = torch.randn(12, 7, generator=g, dtype=D), torch.randn(9, 7, generator=g, dtype=D), _labels(12)
    u = x @ w.T
    right, _ = contrastive_delta_linear(x, u, labels)
    y = torch.tanh(u)
    grad_y, _ = contrastive_grad(y, labels)
    wrong = -(grad_y * (1 - torch.tanh(y) ** 2)).T @ x
    assert (wrong - right).abs().max() > 0.05 * right.abs().max()


@pytest.mark.parametrize("stride,padding,dilation,mode", [(1, 2, 1, "reflect"), (2, 1, 2, "zeros"), (1, 0, 1, "zeros")])
def test_conv_local_gradient_is_autograd_of_the_loss(stride, padding, dilation, mode):
    g = torch.Generator().manual_seed(4)
    x, labels = torch.randn(8, 3, 11, 11, generator=g, dtype=D), _labels(8, classes=3)
    layer = ContrastiveConv2d(3, 5, 3, stride=stride, padding=padding, dilation=dilation, padding_mode=mode,
                              momentum=0.0, generator=g).double()
    conv = nn.Conv2d(3, 5, 3, stride=stride, padding=padding, dilation=dilation, bias=False,
                     padding_mode=mode).double()  # PyTorch pads by itself: an independent forward
    conv.weight.data.copy_(layer.weight)
    contrastive_loss(torch.tanh(conv(x)), labels).backward()
    layer.train()
    out = layer(x)
    assert torch.allclose(out, torch.tanh(conv(x)), atol=1e-12)
    layer.local_update(labels)
    scale = conv.weight.grad.abs().max().item()
    assert scale > 1e-5
    assert torch.allclose(layer.momentum_buffer, -conv.weight.grad, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_a_small_step_along_the_update_lowers_the_local_loss(kind):
    """A sign check that does not rely on autograd: W + εΔW has a lower loss than W − εΔW and than W."""
    g = torch.Generator().manual_seed(5)
    labels = _labels(10, classes=2)
    if kind == "linear":
        x, w = torch.randn(10, 6, generator=g, dtype=D), torch.randn(4, 6, generator=g, dtype=D)
        loss_at = lambda w_: contrastive_loss(torch.tanh(x @ w_.T), labels).item()  # noqa: E731
        delta, _ = contrastive_delta_linear(x, x @ w.T, labels)
    else:
        x, w = torch.randn(10, 2, 6, 6, generator=g, dtype=D), torch.randn(3, 2, 3, 3, generator=g, dtype=D)
        loss_at = lambda w_: contrastive_loss(torch.tanh(F.conv2d(x, w_)), labels).item()  # noqa: E731
        delta, _ = ch.contrastive_delta_conv(x, F.conv2d(x, w), labels, w.shape)
    eps = 1e-3 / delta.abs().max().item()
    assert loss_at(w + eps * delta) < loss_at(w) < loss_at(w - eps * delta)


# ----- the output layer (Eq. 4.28) --------------------------------------------------------------------------
def test_output_layer_rule_is_hebbian_descent_on_the_cross_entropy():
    g = torch.Generator().manual_seed(6)
    x, w, labels = torch.randn(9, 5, generator=g, dtype=D), torch.randn(4, 5, generator=g, dtype=D), _labels(9, 4)
    delta, _ = hebbian_descent_delta(x, x @ w.T, labels)
    # (a) per-sample outer products (t − p) xᵀ with the softmax written out
    expected = torch.zeros_like(w)
    for n in range(9):
        logits = x[n] @ w.T
        p = torch.exp(logits - logits.max()) / torch.exp(logits - logits.max()).sum()
        t = torch.zeros(4, dtype=D)
        t[labels[n]] = 1
        expected += torch.outer(t - p, x[n])
    assert torch.allclose(delta, expected, atol=1e-12)
    # (b) minus autograd of the summed cross-entropy
    w_ = w.clone().requires_grad_(True)
    F.cross_entropy(x @ w_.T, labels, reduction="sum").backward()
    assert torch.allclose(delta, -w_.grad, atol=1e-12)


# ----- the neuron-centric learning rates (Eqs. 4.31, 4.33) ---------------------------------------------------
def test_rate_multipliers_are_the_outer_products_of_eqs_4_31_and_4_33():
    g = torch.Generator().manual_seed(12)
    linear, conv = ContrastiveLinear(4, 3), ContrastiveConv2d(2, 5, 3)
    with torch.no_grad():
        for p in (*linear.parameters(), *conv.parameters()):
            p.copy_(torch.rand(p.shape, generator=g) + 0.5)
    assert torch.allclose(linear.rate_multipliers(), torch.einsum("o,i->oi", linear.c_post, linear.c_pre))
    assert torch.allclose(conv.rate_multipliers(), torch.einsum("o,i,h,w->oihw", conv.c_post, conv.c_pre,
                                                                conv.c_height, conv.c_width))
    assert (linear.c_pre.numel(), linear.c_post.numel()) == (4, 3)
    assert [p.numel() for p in conv.parameters()] == [2, 5, 3, 3]  # I + O + H_k + W_k ("keeping the dimensionality")


@pytest.mark.parametrize("constraint", ["l2", "clip", "none"])
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 3, 3)])
def test_fused_pending_update_equals_autograd_of_the_plain_expression(constraint, shape):
    g = torch.Generator().manual_seed(13)
    weight, momentum = torch.randn(shape, generator=g, dtype=D), torch.randn(shape, generator=g, dtype=D)
    rates = [(torch.rand(n, generator=g, dtype=D) + 0.5).requires_grad_(True) for n in shape]
    plain_rates = [r.detach().clone().requires_grad_(True) for r in rates]
    eta, clip = 0.7, 0.8
    fused = ch._PendingUpdate.apply(weight, momentum, eta, constraint, clip, *rates)
    letters = "oihw"[:len(shape)]
    c = torch.einsum(",".join(letters) + "->" + letters, *plain_rates)
    v = weight + eta * c * momentum
    if constraint == "l2":
        plain = v / (v.flatten(1).norm(dim=1).view(-1, *[1] * (len(shape) - 1)) + 1e-8)
    else:
        plain = v.clamp(-clip, clip) if constraint == "clip" else v
    assert torch.allclose(fused, plain, atol=1e-14)
    if constraint == "clip":
        assert (plain.abs() == clip).any() and (plain.abs() < clip).any()
    upstream = torch.randn(shape, generator=g, dtype=D)
    (fused * upstream).sum().backward()
    (plain * upstream).sum().backward()
    for r, p in zip(rates, plain_rates):
        assert torch.allclose(r.grad, p.grad, atol=1e-12)


# ----- C's gradient through the single-forward-pass step ---------------------------------------------------
def _tiny_net(generator, eta=0.05, clip=10.0):
    body = nn.Sequential(
        ContrastiveConv2d(2, 3, 3, padding=1, eta=eta, clip_value=clip, name="conv1", generator=generator),
        nn.MaxPool2d(2), nn.Flatten(),
        ContrastiveLinear(3 * 3 * 3, 5, eta=eta, name="fc1", generator=generator),
        ContrastiveLinear(5, 3, rule="hebbian_descent", eta=eta, name="out", generator=generator))
    return ContrastiveNet(body, learning="contrastive", architecture="tiny").double()


@pytest.mark.parametrize("clip", [10.0, 0.15])
def test_rate_gradient_through_the_single_forward_pass_matches_finite_differences(clip):
    g = torch.Generator().manual_seed(7)
    net = _tiny_net(g, eta=0.5, clip=clip)
    x1, x2 = torch.randn(6, 2, 6, 6, generator=g, dtype=D), torch.randn(6, 2, 6, 6, generator=g, dtype=D)
    y1, y2 = _labels(6, 3, seed=1), _labels(6, 3, seed=2)
    net.train()
    net.begin_step()                      # nothing pending: the committed weights
    net(x1)
    net.local_updates(y1)                 # ΔW(1) pending
    with torch.no_grad():                 # C's away from 1, so every factor of the outer product matters
        for p in net.parameters():
            p.copy_(torch.empty_like(p).uniform_(0.5, 1.5, generator=g))
    net.begin_step()                      # W = constrain(W + η C ⊙ M): in the graph
    F.cross_entropy(net(x2), y2).backward()
    analytic = {name: p.grad.clone() for name, p in net.named_parameters()}
    if clip < 1:
        assert (net.plastic_layers()["conv1"].current_weight().abs() == clip).any()  # the clip is active

    def loss():
        with torch.no_grad():
            net.begin_step()
            return F.cross_entropy(net(x2), y2).item()

    net.eval()
    h = 1e-6
    for name, p in net.named_parameters():
        numeric = torch.zeros_like(p)
        for i in range(p.numel()):
            keep = p.data.view(-1)[i].item()
            p.data.view(-1)[i] = keep + h
            up = loss()
            p.data.view(-1)[i] = keep - h
            down = loss()
            p.data.view(-1)[i] = keep
            numeric.view(-1)[i] = (up - down) / (2 * h)
        scale = numeric.abs().max().item()
        assert scale > 1e-7, name
        assert torch.allclose(analytic[name], numeric, rtol=0, atol=1e-6 * scale + 1e-10), name


def test_first_step_leaves_the_rates_alone_and_the_second_trains_them():
    g = torch.Generator().manual_seed(8)
    net = _tiny_net(g).float()
    data = DeviceDataset(torch.randint(0, 256, (12, 2, 6, 6), dtype=torch.uint8, generator=g), _labels(12, 3),
                         device="cpu")
    optimizer = ch.make_optimizer(net, ch.ADAMW_C)
    before = [p.detach().clone() for p in net.parameters()]
    for step, (x, y) in enumerate(data.batches(6, shuffle=False)):
        optimizer.zero_grad(set_to_none=True)
        net.begin_step()
        logits = net(x)
        if step == 0:
            assert not logits.requires_grad  # no pending update yet: no graph to C (§4.3)
        else:
            F.cross_entropy(logits, y).backward()
            optimizer.step()
        net.local_updates(y)
        changed = [not torch.equal(a, b) for a, b in zip(before, net.parameters())]
        assert all(changed) == (step == 1) and any(changed) == (step == 1)


# ----- momentum, label smoothing, constraints ----------------------------------------------------------
def _three_steps(momentum, g_seed=9):
    g = torch.Generator().manual_seed(g_seed)
    layer = ContrastiveLinear(6, 4, eta=0.3, momentum=momentum, constraint="none",
                              generator=torch.Generator().manual_seed(0)).double()
    with torch.no_grad():
        layer.c_pre.copy_(torch.linspace(0.5, 1.5, 6))
        layer.c_post.copy_(torch.linspace(2.0, 0.5, 4))
    xs, ys = [torch.randn(8, 6, generator=g, dtype=D) for _ in range(3)], [_labels(8, 2, s) for s in range(3)]
    layer.train()
    weights, deltas = [], []
    for x, y in zip(xs, ys):
        with torch.no_grad():
            layer.begin_step()
            w = layer.current_weight().clone()
            layer(x)
        weights.append(w)
        deltas.append(contrastive_delta_linear(x, x @ w.T, y)[0])
        layer.local_update(y)
    return layer, weights, deltas


def test_momentum_accumulates_the_updates_and_changes_nothing_else():
    beta = 0.9
    layer, weights, deltas = _three_steps(beta)
    rate = layer.eta * torch.outer(layer.c_post, layer.c_pre).detach()
    m1, m2 = deltas[0], beta * deltas[0] + deltas[1]
    assert torch.allclose(weights[1], weights[0] + rate * m1, atol=1e-12)
    assert torch.allclose(weights[2], weights[1] + rate * m2, atol=1e-12)
    assert torch.allclose(layer.momentum_buffer, beta * m2 + deltas[2], atol=1e-12)
    plain, plain_weights, plain_deltas = _three_steps(0.0)
    assert torch.allclose(plain.momentum_buffer, plain_deltas[2], atol=1e-14)  # β = 0: the last ΔW alone
    # the first update is the same with or without momentum; the second step's weights already differ
    assert torch.equal(plain_weights[1], weights[1]) and torch.equal(plain_deltas[0], deltas[0])
    assert not torch.allclose(plain_weights[2], weights[2])


def test_label_smoothing_changes_the_hidden_updates_only():
    def updates(alpha):
        net = contrastive_mlp([8, 6], label_smoothing=alpha, generator=torch.Generator().manual_seed(0)).double()
        net.train()
        x = torch.randn(10, 3072, generator=torch.Generator().manual_seed(1), dtype=D)
        net.begin_step()
        net(x)
        net.local_updates(_labels(10, 3))
        return {name: layer.momentum_buffer.clone() for name, layer in net.plastic_layers().items()}

    plain, smoothed, zero = updates(0.0), updates(0.1), updates(0.0)
    assert torch.equal(plain["out"], smoothed["out"])
    for name in ("fc1", "fc2"):
        assert torch.equal(plain[name], zero[name])
        assert (plain[name] - smoothed[name]).abs().max() > 1e-3 * plain[name].abs().max()


def test_linear_rows_are_unit_norm_and_conv_weights_clipped_after_a_step():
    g = torch.Generator().manual_seed(10)
    linear = ContrastiveLinear(5, 4, eta=50.0, generator=g)
    conv = ContrastiveConv2d(2, 3, 3, eta=1e6, generator=g)
    x, xc, y = torch.randn(8, 5, generator=g), torch.randn(8, 2, 5, 5, generator=g), _labels(8, 2)
    assert torch.allclose(linear.weight.norm(dim=1), torch.ones(4))  # normalised from the start
    for layer, inp in ((linear, x), (conv, xc)):
        layer.train()
        for _ in range(2):
            layer.begin_step()
            layer(inp)
            layer.local_update(y)
    raw = linear.weight + linear.eta * linear.rate_multipliers().detach() * linear.momentum_buffer
    assert (raw.norm(dim=1) - 1).abs().max() > 0.1  # without the constraint the rows would not be unit norm
    assert torch.allclose(linear.weight.norm(dim=1), torch.ones(4), atol=1e-6)
    assert conv.weight.abs().max().item() == 10.0 and (conv.weight.abs() == 10.0).sum() > 1


# ----- networks ----------------------------------------------------------------------------------------
def test_network_shapes_and_parameter_counts():
    assert conv_channels(4) == [96, 384, 1536] and conv_channels(2) == [96, 192, 384] and conv_channels(1) == [96] * 3
    assert fc_sizes(24576) == [1024, 256] and fc_sizes(6144) == [1024, 256] and fc_sizes(1536) == [384, 96]
    weights_f4 = (3 * 96 * 25 + 96 * 384 * 9 + 384 * 1536 * 9) + 24576 * 1024 + 1024 * 256 + 256 * 10
    rates_f4 = (3 + 96 + 10) + (96 + 384 + 6) + (384 + 1536 + 6) + (24576 + 1024) + (1024 + 256) + (256 + 10)
    assert PARAMETER_COUNTS["conv_f4"] == (weights_f4, rates_f4)
    assert PARAMETER_COUNTS["mlp"] == (3072 * 2000 + 3 * 2000 ** 2 + 2000 * 10,
                                        (3072 + 4 * 2000) + (4 * 2000 + 10))
    for width in (1, 2):
        net = contrastive_conv(width, generator=torch.Generator().manual_seed(0))
        assert (net.num_parameters(), net.num_rate_parameters()) == PARAMETER_COUNTS[f"conv_f{width}"]
        twin = contrastive_conv(width, learning="backprop", generator=torch.Generator().manual_seed(0))
        assert twin.num_parameters() == net.num_parameters() and twin.num_rate_parameters() == 0
        assert torch.equal(twin.body[0][0].weight, net.body[0].weight)  # the same initial conv weights
    net.eval()  # the F = 2 network: 0.1 dropout once, after the convs
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert [type(m).__name__ for m in net.body] == ["ContrastiveConv2d", "MaxPool2d"] * 2 + [
        "ContrastiveConv2d", "AvgPool2d", "Flatten", "FastDropout"] + ["ContrastiveLinear"] * 3
    assert net.body[7].p == 0.1


# ----- the training loop -------------------------------------------------------------------------------
def _random_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % 4
    images[labels == 1, 0] //= 2  # some class structure
    return DeviceDataset(images, labels, normalization="standardize", device="cpu")


def _small_mlp(learning="contrastive"):
    return contrastive_mlp([24, 16], learning=learning, num_classes=4, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("learning", ["contrastive", "backprop"])
def test_training_resumes_from_its_epoch_checkpoint_as_if_uninterrupted(tmp_path, learning):
    train, val, test = _random_data(66, 0), _random_data(20, 1), _random_data(20, 2)

    def run(epochs, path):
        torch.manual_seed(0)
        net = _small_mlp(learning)
        history = train_contrastive(net, train, val, test, epochs=epochs, batch_size=8, progress=False,
                                    generator=torch.Generator().manual_seed(3), checkpoint=path, checkpoint_key="k")
        return net, history

    straight, h_straight = run(2, tmp_path / "a.pt")
    run(1, tmp_path / "b.pt")  # "interrupted" after one epoch
    resumed, h_resumed = run(2, tmp_path / "b.pt")
    keys = ("train_loss", "train_acc", "val_acc", "test_acc")
    assert [[h[k] for k in keys] for h in h_resumed] == [[h[k] for k in keys] for h in h_straight]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    if learning == "contrastive":
        assert set(h_straight[0]["local_loss"]) == {"fc1", "fc2", "out"}
        assert set(h_straight[0]["rates"]["fc1"]) == {"pre", "post"}


def test_nan_guard_names_the_layer_and_the_step():
    net = _small_mlp()
    with torch.no_grad():
        net.plastic_layers()["fc2"].c_post[3] = float("nan")
    data = _random_data(32, 0)
    with pytest.raises(HebbianDivergenceError, match=r"epoch 1, batch 1/4: layer 'fc2' learning-rate multipliers "
                                                     r"c_post are not finite"):
        train_contrastive(net, data, data, data, epochs=1, batch_size=8, progress=False)


def test_run_contrastive_writes_and_reuses_its_result(tmp_path):
    preset = ch.get_contrastive_preset("contrastive_mlp")
    preset["name"], preset["model"]["hidden"] = "tiny_mlp", [16]
    first = ch.run_contrastive(preset, quick=True, epochs=1, limit_train=100, limit_test=40, out=tmp_path,
                               progress=False, notice=None)
    assert first["complete"] and first["data"]["source"] == "subset" and first["learning"] == "contrastive"
    assert 0 <= first["test_acc_at_best_val"] <= 100 and first["published"] == 42.17
    again = ch.run_contrastive(preset, quick=True, epochs=1, limit_train=100, limit_test=40, out=tmp_path,
                               progress=False, notice=None)
    assert again.get("reused") and again["final_test_acc"] == first["final_test_acc"]


def test_presets_carry_the_thesis_hyperparameters():
    mlp, f4, f1 = (ch.get_contrastive_preset(n) for n in ("contrastive_mlp", "contrastive_conv_f4",
                                                          "contrastive_conv_f1"))
    assert mlp["optimizer"] == {"name": "adamw", "lr": 0.03, "weight_decay": 0.003}
    assert (mlp["training"]["epochs"], f4["training"]["epochs"], f4["training"]["batch_size"]) == (100, 50, 32)
    assert (f4["model"]["eta_conv"], f4["model"]["eta_linear"], mlp["model"]["eta"]) == (1e-4, 1e-3, 1e-3)
    assert (f4["model"]["dropout"], ch.get_contrastive_preset("contrastive_conv_f2")["model"]["dropout"],
            f1["model"]["dropout"]) == (0.3, 0.1, 0.0)
    assert ch.get_contrastive_preset("contrastive_mlp_backprop")["optimizer"]["name"] == "sgd"
    for name in ch.list_contrastive_presets():
        ch.validate_contrastive_preset(ch.get_contrastive_preset(name))


# ----- bad input: one clear error naming the value and the valid choices --------------------------------------
BAD = [
    (lambda: ContrastiveLinear(4, 3, activation="sigmoid"), ValueError,
     r"unknown activation 'sigmoid'; valid choices: 'relu', 'tanh'"),
    (lambda: ContrastiveLinear(4, 3, rule="oja"), ValueError,
     r"unknown rule 'oja'; valid choices: 'contrastive', 'hebbian_descent'"),
    (lambda: ContrastiveLinear(4, 3, constraint="l1"), ValueError,
     r"unknown constraint 'l1'; valid choices: 'clip', 'l2', 'none'"),
    (lambda: ContrastiveLinear(4, 3, eta=-1), ValueError, r"eta must be a number in \(0.0, inf\), got -1"),
    (lambda: ContrastiveLinear(4, 3, momentum=1.0), ValueError, r"momentum must be a number in \[0.0, 1.0\), got 1.0"),
    (lambda: ContrastiveLinear(4, 3, label_smoothing=1.5), ValueError, r"label_smoothing must be .* got 1.5"),
    (lambda: ContrastiveLinear(4, 0), ValueError, r"out_features must be an int >= 1, got 0"),
    (lambda: ContrastiveConv2d(3, 4, 3, padding_mode="circular"), ValueError,
     r"unknown padding_mode 'circular'; valid choices: 'reflect', 'zeros'"),
    (lambda: ContrastiveLinear(4, 3, name="fc1")(torch.randn(2, 5)), ValueError,
     r"layer 'fc1' expects input B × 4, got \(2, 5\)"),
    (lambda: ContrastiveConv2d(3, 4, 3)(torch.randn(2, 1, 8, 8)), ValueError, r"expects input B × 3 × H × W"),
    (lambda: contrastive_loss(torch.randn(4, 3), torch.tensor([0, 1, 0])), ValueError,
     r"got 3 labels for a batch of 4 samples"),
    (lambda: contrastive_loss(torch.randn(1, 3), torch.tensor([0])), ValueError, r"at least 2; got 1"),
    (lambda: contrastive_loss(torch.randn(2, 3), torch.tensor([0.0, 1.0])), ValueError,
     r"labels must be a 1-D integer tensor"),
    (lambda: ContrastiveLinear(4, 3).local_update(torch.tensor([0, 1])), RuntimeError,
     r"local_update needs a training-mode forward first"),
    (lambda: ch.get_contrastive_preset("contrastive_cnn"), ValueError,
     r"unknown contrastive preset 'contrastive_cnn'; valid choices: 'contrastive_conv_backprop'"),
    (lambda: contrastive_conv(3), ValueError, r"no published dropout for width_factor=3 \(known: 1, 2, 4\)"),
    (lambda: contrastive_conv(0), ValueError, r"width_factor must be an int >= 1, got 0"),
    (lambda: contrastive_mlp(learning="hebb"), ValueError,
     r"unknown learning 'hebb'; valid choices: 'backprop', 'contrastive'"),
    (lambda: contrastive_mlp([8], dropout=1.0), ValueError, r"dropout must be a number in \[0, 1\), got 1.0"),
    (lambda: ch.make_optimizer(_small_mlp(), {"name": "adam", "lr": 0.1}), ValueError,
     r"unknown optimizer 'adam'; valid choices: 'adamw', 'sgd'"),
    (lambda: ch.validate_contrastive_preset({**ch.get_contrastive_preset("contrastive_mlp"), "network": "cnn"}),
     ValueError, r"contrastive preset 'contrastive_mlp': network = 'cnn': valid choices: 'mlp', 'conv'"),
    (lambda: train_contrastive(_small_mlp(), None, None, None, epochs=1, batch_size=1), ValueError,
     r"batch_size must be an int >= 2"),
]


@pytest.mark.parametrize("make,error,message", BAD, ids=[m for _, _, m in BAD])
def test_bad_input_gives_one_clear_error(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_state_dict_round_trip_keeps_the_pending_update():
    g = torch.Generator().manual_seed(11)
    net = _small_mlp()
    net.train()
    x, y = torch.randn(8, 3, 32, 32, generator=g), _labels(8, 4)
    net.begin_step()
    net(x)
    net.local_updates(y)
    fresh = _small_mlp()
    fresh.load_state_dict(net.state_dict())
    assert all(layer._has_pending for layer in fresh.plastic_layers().values())
    net.begin_step()
    fresh.begin_step()
    assert torch.equal(net(x), fresh(x))  # both apply the same pending update
    assert not torch.equal(net(x), _small_mlp()(x))


# ----- the presets as typed configuration (hebblib.config.ContrastivePresetConfig) ----------------------------
@pytest.mark.parametrize("name", ch.list_contrastive_presets())
def test_every_contrastive_preset_is_a_frozen_typed_config_that_round_trips(name):
    import dataclasses

    from hebblib.config import ContrastivePresetConfig
    from hebblib.presets import contrastive_preset_config, preset_kind

    preset = ch.get_contrastive_preset(name)
    config = contrastive_preset_config(name)
    assert preset_kind(name) == "contrastive"
    assert (config.network, config.learning, config.training.epochs, config.training.batch_size) == (
        preset["network"], preset["learning"], preset["training"]["epochs"], preset["training"]["batch_size"])
    assert dict(config.model.options) == preset["model"] and config.optimizer.lr == preset["optimizer"]["lr"]
    assert (config.published, config.published_std) == (preset["published"], preset["published_std"])
    assert ContrastivePresetConfig.from_dict(config.to_dict()) == config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.training.epochs = 3


def test_a_change_merges_key_by_key_and_is_recorded():
    from hebblib.presets import contrastive_preset_config

    preset = ch.change_contrastive_preset("contrastive_conv_f1", {"training": {"epochs": 2}, "model": {"eta_conv": 2e-4}})
    assert preset["training"] == {"epochs": 2, "batch_size": 32, "augment": False}  # the rest kept
    assert preset["model"]["eta_conv"] == 2e-4 and preset["model"]["eta_linear"] == 1e-3
    assert preset["change"] == {"training": {"epochs": 2}, "model": {"eta_conv": 2e-4}}
    assert ch.get_contrastive_preset("contrastive_conv_f1")["training"]["epochs"] == 50  # the registry untouched
    config = contrastive_preset_config("contrastive_conv_f1").changed({"training": {"epochs": 2}})
    assert config.training.epochs == 2 and dict(config.change) == {"training": {"epochs": 2}}


PREFIX = r"contrastive preset 'contrastive_conv_f1': "
BAD_CHANGES = [
    ({"training": {"epochs": 0}}, PREFIX + r"training.epochs = 0: must be an int >= 1"),
    ({"training": {"batch_size": 1}}, PREFIX + r"training.batch_size = 1: must be an int >= 2"),
    ({"training": {"epoch": 3}}, PREFIX + r"training.epoch = 3: not a setting; valid keys: 'augment', 'batch_size', "
                                          r"'epochs'"),
    ({"training": {"augment": "yes"}}, PREFIX + r"training.augment = 'yes': must be True or False"),
    ({"model": {"eta_conv": "fast"}}, PREFIX + r"model.eta_conv = 'fast': must be a finite number > 0"),
    ({"model": {"momentum": 1.0}}, PREFIX + r"model.momentum = 1.0: must be a finite number >= 0 and < 1"),
    ({"model": {"label_smoothing": -0.1}}, PREFIX + r"model.label_smoothing = -0.1: must be a finite number >= 0"),
    ({"model": {"activation": "sigmoid"}}, PREFIX + r"model.activation = 'sigmoid': valid choices: 'tanh', 'relu'"),
    ({"model": {"width_factor": 3, "dropout": None}}, PREFIX + r"model.width_factor = 3: no published dropout for this width "
                                              r"\(known: 1, 2, 4\); set model.dropout too"),
    ({"model": {"width_factor": 1.5}}, PREFIX + r"model.width_factor = 1.5: must be an int >= 1"),
    ({"model": {"hidden": [2000]}}, PREFIX + r"model.hidden = \[2000\]: not a conv option; valid keys: "
                                             r"'activation', 'dropout', 'eta_conv'"),
    ({"optimizer": {"name": "adam"}}, PREFIX + r"optimizer.name = 'adam': valid choices: 'adamw', 'sgd'"),
    ({"optimizer": {"momentum": 0.9}}, PREFIX + r"optimizer.momentum = 0.9: not used by 'adamw'"),
    ({"optimizer": {"lr": float("nan")}}, PREFIX + r"optimizer.lr = nan: must be a finite number > 0"),
    ({"data": {"normalization": "whiten"}}, PREFIX + r"data.normalization = 'whiten': valid choices: 'none'"),
    ({"network": "mlp"}, PREFIX + r"change.network = 'mlp': not a preset key to change; valid keys: 'model', "
                                  r"'optimizer', 'training', 'data'"),
]


@pytest.mark.parametrize("change, message", BAD_CHANGES, ids=[m.split(": ")[1] for _, m in BAD_CHANGES])
def test_a_bad_setting_is_one_error_naming_key_path_value_and_choices(change, message):
    with pytest.raises(ValueError, match="^" + message):
        ch.change_contrastive_preset("contrastive_conv_f1", change)


def test_a_backprop_network_refuses_the_local_rules_settings():
    with pytest.raises(ValueError, match=r"contrastive preset 'contrastive_conv_f1_backprop': model.eta_conv = 0.1: "
                                         r"used by the local rule only, and this network learns by backprop"):
        ch.change_contrastive_preset("contrastive_conv_f1_backprop", {"model": {"eta_conv": 0.1}})
    with pytest.raises(ValueError, match=r"optimizer.weight_decay = 0.003: not used by 'sgd'"):
        ch.change_contrastive_preset("contrastive_mlp_backprop", {"optimizer": {"weight_decay": 0.003}})


def test_run_contrastive_checks_the_preset_before_reading_data(tmp_path, monkeypatch):
    import hebblib.training as training

    def no_data(*args, **kwargs):
        raise AssertionError("data was read before the preset was checked")

    monkeypatch.setattr(training, "load_splits", no_data)
    preset = ch.get_contrastive_preset("contrastive_mlp")
    preset["training"]["batch_size"] = 1
    with pytest.raises(ValueError, match=r"training.batch_size = 1: must be an int >= 2"):
        ch.run_contrastive(preset, quick=True, out=tmp_path, progress=False, notice=None)
    with pytest.raises(ValueError, match=r"limit_train must be an int >= 20"):
        ch.run_contrastive("contrastive_mlp", quick=True, limit_train=5, out=tmp_path, progress=False, notice=None)
    assert not any(tmp_path.iterdir())
