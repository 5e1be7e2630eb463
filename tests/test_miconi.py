"""Miconi (2021, seed 002): the 3-layer network with dense activations, sparse plasticity and pruning.

The reference below is written from Miconi's own code as the spec quotes it (miconi-lunelli-manzali §1.2,
§1.5–1.7), independently of the library: per-sample standardisation, ``prelimy = conv2d(x, w)``, the binary
k-WTA of ``prelimy − thres`` (a winner with a value <= 0 zeroed, as his code does), Instar through the
surrogate loss ``−½ Σ yforgrad²`` with ``yforgrad.data = realy`` and autograd, a plain SGD step, the mask, the
renormalisation, the threshold update after the batch, and the transmitted output ``relu(a − mean_c a)`` with
``a = prelimy − thres`` before average pooling. The library's network (direct update, the layer's own
competition) must follow it batch after batch on real CIFAR-10 images.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hebblib.data import load_subset
from hebblib.networks import build_network
from hebblib.presets import get_preset, preset_config


def standardise(x):
    dims = (1, 2, 3)
    return (x - x.mean(dim=dims, keepdim=True)) / (x.std(dim=dims, keepdim=True) + 1e-8)


class MiconiReference:
    """Miconi's training step for his 3-layer net, from his code (his variable names), in float64."""

    def __init__(self, weights, masks, lrs, k=1, muthres=3.0, triangle=True):
        self.w = [w.clone().double().requires_grad_(True) for w in weights]
        self.masks = [None if m is None else m.double() for m in masks]
        self.thres = [torch.zeros(1, w.shape[0], 1, 1, dtype=torch.float64) for w in weights]
        self.optimizers = [torch.optim.SGD([w], lr=lr, momentum=0.0) for w, lr in zip(self.w, lrs)]
        self.k, self.muthres, self.triangle = k, muthres, triangle

    def layer(self, x, i):
        w = self.w[i]
        prelimy = F.conv2d(standardise(x), w)
        realy = (prelimy - self.thres[i]).detach().clone()
        tk = torch.topk(realy, self.k, dim=1, largest=True)[0]
        realy[realy < tk[:, -1:, :, :]] = 0
        realy = (realy > 0).double()  # binarised; a winner at or below 0 is zeroed
        if self.triangle:  # dense activations: relu(a − mean_c a), a = prelimy − thres (this batch's thres)
            outy = (prelimy - self.thres[i]).detach()
            outy = torch.clamp(outy - outy.mean(dim=1, keepdim=True), min=0)
        else:
            outy = realy
        yforgrad = prelimy - 0.5 * torch.sum(w * w, dim=(1, 2, 3))[None, :, None, None]  # Instar
        yforgrad.data = realy.data
        loss = torch.sum(-0.5 * yforgrad * yforgrad)
        return F.avg_pool2d(outy, 2), loss, realy

    def step(self, x, learn=True):
        x, losses, firing = x.double(), [], []
        for i in range(len(self.w)):
            x, loss, realy = self.layer(x, i)
            losses.append(loss)
            firing.append(realy)
        for i, (w, optimizer) in enumerate(zip(self.w, self.optimizers)):
            optimizer.zero_grad()
            losses[i].backward()
            if learn:
                optimizer.step()
            with torch.no_grad():
                if self.masks[i] is not None:
                    w.mul_(self.masks[i])
                w.div_(w.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1))
            rate = firing[i].mean(dim=(0, 2, 3), keepdim=True)  # each cell's firing over batch and positions
            self.thres[i] += self.muthres * (rate - self.k / w.shape[0])
        return x.flatten(1)


def library_net(triangle=True, width=0.25, seed=0):
    """The network of the ``miconi`` preset (its layer settings), at ``width``, in float64."""
    net = build_network("miconi", get_preset("miconi")["layers"], triangle=triangle, width_factor=width,
                        generator=torch.Generator().manual_seed(seed))
    return net.double()


def reference_of(net, triangle=True):
    layers = list(net.hebbian_layers().values())
    return MiconiReference([layer.weight.detach() for layer in layers], [layer.mask for layer in layers],
                           [layer.lr for layer in layers], triangle=triangle)


@pytest.fixture(scope="module")
def batches():
    images, _ = load_subset(train=True)
    x = images[:120].double() / 255.0
    return [x[i:i + 20] for i in range(0, 120, 20)]


@pytest.mark.parametrize("triangle", [True, False])
def test_training_follows_miconis_code_batch_after_batch(batches, triangle):
    # full width: every unit keeps some of its 1 % of weights (at a quarter width some lose all, and such dead
    # units tie exactly, where Miconi's code lets all of them fire and an argmax picks one)
    net = library_net(triangle, width=1.0)
    assert all(layer.mask is None or bool((layer.mask.flatten(1).sum(1) > 0).all())
               for layer in net.hebbian_layers().values())
    for layer in net.hebbian_layers().values():
        layer.lr = layer.lr * 1000  # large steps, so that a wrong update could not hide under round-off
    reference = reference_of(net, triangle)
    net.train()
    for x in batches:
        with torch.no_grad():
            features = net.features(x)
        net.apply_updates()
        expected = reference.step(x)
        torch.testing.assert_close(features, expected, rtol=1e-9, atol=1e-9)
    for i, layer in enumerate(net.hebbian_layers().values()):
        torch.testing.assert_close(layer.weight, reference.w[i].detach(), rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(layer.competition.threshold, reference.thres[i].flatten(), rtol=1e-9, atol=1e-9)
    assert any(t.abs().max() > 0.1 for t in reference.thres)  # the thresholds moved: the check covers them
    # frozen (eval mode): the same features as the reference with its thresholds, and nothing changes
    net.eval()
    before = [layer.weight.clone() for layer in net.hebbian_layers().values()]
    with torch.no_grad():
        frozen = net.features(batches[0])
    for w, layer in zip(before, net.hebbian_layers().values()):
        assert torch.equal(w, layer.weight)
    thresholds = [t.clone() for t in reference.thres]
    expected = reference.step(batches[0], learn=False)
    reference.thres = thresholds
    torch.testing.assert_close(frozen, expected, rtol=1e-9, atol=1e-9)


def test_sparse_plasticity_dense_activations(batches):
    """One winner learns per position (ŷ binary, 1/N of the units), while about half the units transmit."""
    net = library_net(True, width=1.0)
    net.train()
    layer = net.hebbian_layers()["conv2"]
    seen = {}
    handle = layer.competition.register_forward_hook(lambda m, i, y: seen.setdefault("y", y))
    block_out = {}
    net.stages[1].act.register_forward_hook(lambda m, i, out: block_out.setdefault("out", out))
    with torch.no_grad():
        net.features(batches[0])
    handle.remove()
    y = seen["y"]
    assert set(y.unique().tolist()) <= {0.0, 1.0} and torch.equal(y.sum(1), torch.ones_like(y.sum(1)))
    active = (block_out["out"] > 0).double().mean().item()
    assert 0.3 < active < 0.7  # "about half of the cells in any column respond" (spec §1.6)


def test_pruning_masks_stay_and_units_keep_unit_norm(batches):
    net = library_net(True, width=1.0)
    layers = net.hebbian_layers()
    assert layers["conv1"].mask is None
    for name in ("conv2", "conv3"):
        kept = layers[name].mask.mean().item()
        assert 0.008 < kept < 0.012  # 99 % pruned, 1 % kept (spec §1.6)
    net.train()
    for x in batches[:3]:
        with torch.no_grad():
            net.features(x)
        net.apply_updates()
    for name in ("conv2", "conv3"):
        layer = layers[name]
        assert torch.all(layer.weight[layer.mask == 0] == 0)
        norms = layer.weight.flatten(1).norm(dim=1)
        alive = layer.mask.flatten(1).sum(1) > 0
        torch.testing.assert_close(norms[alive], torch.ones_like(norms[alive]), rtol=1e-9, atol=1e-9)


def test_presets_follow_miconis_protocol():
    config = preset_config("miconi")
    assert (config.unsupervised.epochs, config.unsupervised.batch_size, config.unsupervised.warmup_batches) == (20, 100, 200)
    assert config.data.normalization == "zca" and get_preset("miconi")["published"] == 64.55
    net = build_network("miconi", get_preset("miconi")["layers"], triangle=True)
    assert [layer.lr for layer in net.hebbian_layers().values()] == [1e-4, 1e-4, 1e-3]
    assert [layer.out_channels for layer in net.hebbian_layers().values()] == [100, 196, 400]
    assert net.num_features == 1600
    wta = get_preset("miconi_wta")
    assert wta["model"] == {"triangle": False} and all(l["prune_fraction"] == 0 for l in wta["layers"])
    assert wta["published"] == 34.5
    # a pruning sweep is a change of the layers' prune_fraction
    swept = preset_config("miconi", change={"layers": [{}, {"prune_fraction": 0.9}, {"prune_fraction": 0.9}]})
    assert [layer.prune_fraction for layer in swept.layers] == [0.0, 0.9, 0.9]


# ----- chapter 2's section on dense activations, sparse plasticity and pruning ---------------------------------
def png(fig) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=30)
    return buffer.getvalue()


def test_chapter2_activity_and_pruning_checks():
    from hebblib.chapters import ch02_updates_as_gradients as ch2

    dense, sparse = ch2.activity_and_plasticity("triangle", n=10), ch2.activity_and_plasticity("binary WTA", n=10)
    for name, units in (("conv1", 100), ("conv2", 196), ("conv3", 400)):
        assert dense[name]["units"] == units
        assert dense[name]["learn"] <= 1 / units + 1e-9 and sparse[name]["learn"] <= 1 / units + 1e-9
        assert 0.3 < dense[name]["transmit"] < 0.7 and abs(sparse[name]["transmit"] - 1 / units) < 1e-6
    checks = ch2.pruning_check(fraction=0.9, steps=2, n=10)
    assert set(checks) == {"conv2", "conv3"}
    for check in checks.values():
        assert 0.08 < check["kept"] < 0.12 and check["max_pruned"] == 0.0 and check["norm_gap"] < 1e-5


def test_chapter2_pruning_sweep_and_demo_redraws_per_control(monkeypatch):
    from hebblib.chapters import ch02_updates_as_gradients as ch2

    sweep = ch2.pruning_sweep(fractions=(0.0, 0.99), outputs=("triangle",), hebbian_epochs=1, width=0.125,
                              limit_train=100, limit_test=40, probe_epochs=1, source="subset")
    assert [(r["output"], r["fraction"]) for r in sweep["rows"]] == [("triangle", 0.0), ("triangle", 0.99)]
    assert all(0 <= r["untrained"] <= 100 and 0 <= r["trained"] <= 100 for r in sweep["rows"])
    assert sweep["n_train"] == 90 and sweep["warmup_batches"] == 0
    base = png(ch2.pruning_demo(0.99, "triangle", committed=sweep))
    assert png(ch2.pruning_demo(0.0, "triangle", committed=sweep)) != base
    assert png(ch2.pruning_demo(0.999, "triangle", committed=sweep)) != base
    assert png(ch2.pruning_demo(0.99, "binary WTA", committed=sweep)) != base
    assert png(ch2.pruning_demo(0.99, "triangle", committed=None)) != base  # not measured: says so
    with pytest.raises(ValueError, match="unknown output 'dense'"):
        ch2.miconi_net(0.5, "dense")


def test_chapter2_reads_the_committed_pruning_run(tmp_path, monkeypatch, capsys):
    import hebblib.results as results
    from hebblib.chapters import ch02_updates_as_gradients as ch2

    monkeypatch.setattr(results, "chapter_results_dir", lambda: tmp_path)
    assert ch2.committed_pruning_curve() is None
    ch2.pruning_report(None)
    assert "not measured yet (python scripts/miconi_pruning.py)" in capsys.readouterr().out
    rows = [{"output": "triangle", "fraction": 0.99, "untrained": 50.0, "trained": 60.25},
            {"output": "binary WTA", "fraction": 0.0, "untrained": 11.0, "trained": 30.5}]
    results.save_chapter_result(ch2.PRUNING_RESULT, {"curve": rows, "setting": "a test setting"}, tmp_path)
    committed = ch2.committed_pruning_curve()
    assert committed["rows"] == rows
    ch2.pruning_report(committed)
    out = capsys.readouterr().out
    assert "triangle output, 0.99 of layers 2–3 pruned, trained: measured 60.2% | published 64.5%" in out
    assert "binary WTA output, 0 of layers 2–3 pruned, trained: measured 30.5% | published 34.5%" in out
