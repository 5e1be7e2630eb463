"""The α-hybrid (hebblib.hybrid, presets hybrid_soft / hybrid_optimal): weight.grad = (1 − α)·grad_BP − α·ΔW.

Each check compares with an independent formulation: α = 0 against the plain end-to-end backprop loop on the
same network (bit for bit), α = 1 against the ΔW of a pure Hebbian forward and the head's gradient of a pure
backprop step, a middle α against the mix written out by hand; and the run resumes as if uninterrupted.
"""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from hebblib.classifier import train_end_to_end
from hebblib.data import DeviceDataset
from hebblib.hybrid import HybridHook
from hebblib.presets import build_model, change_preset, get_preset, preset_config

NARROW = {"model": {"width_factor": 0.125}}  # 12/48/192 channels: the soft / optimal network at a test's size


def _data(n, seed, normalization="standardize"):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % 10
    images[labels % 2 == 1, 0] //= 2  # some class structure
    return DeviceDataset(images, labels, normalization=normalization, device="cpu")


def _network(name="hybrid_soft", seed=0):
    torch.manual_seed(seed)
    return build_model(change_preset(get_preset(name), NARROW))


def _train(model, hook, epochs=1, checkpoint=None, n=24):
    train, val, test = _data(n, 0), _data(20, 1), _data(20, 2)
    torch.manual_seed(5)  # dropout
    return train_end_to_end(model, train, val, test, epochs=epochs, batch_size=8, augment=True,
                            generator=torch.Generator().manual_seed(3), progress=False, hook=hook,
                            checkpoint=checkpoint, checkpoint_key="k" if checkpoint else None)


@pytest.mark.parametrize("name", ["hybrid_soft", "hybrid_optimal"])
def test_alpha_zero_is_the_backprop_path_bit_for_bit(name):
    plain = _network(name)
    plain.set_plastic(False)  # what the pipeline's end_to_end mode trains: no Hebbian update at all
    hybrid = _network(name)
    start = {k: v.clone() for k, v in plain.state_dict().items()}
    h_plain = _train(plain, None)
    h_hybrid = _train(hybrid, HybridHook(hybrid, 0.0))
    assert [h["train_loss"] for h in h_hybrid] == [h["train_loss"] for h in h_plain]
    for key, value in plain.state_dict().items():
        if key.endswith(("delta_w", "num_updates", "win_counts", "theta")):
            continue  # the Hebbian layers' own bookkeeping (ΔW was computed, then weighted by α = 0)
        assert torch.equal(value, hybrid.state_dict()[key]), key
    assert not torch.equal(start["stages.0.conv.weight"], plain.state_dict()["stages.0.conv.weight"])
    # and a small α already trains another network (the test can fail)
    mixed = _network(name)
    _train(mixed, HybridHook(mixed, 0.25))
    assert not torch.equal(mixed.state_dict()["stages.0.conv.weight"], plain.state_dict()["stages.0.conv.weight"])


def _one_step_gradients(name, alpha):
    """weight.grad of every parameter after one hybrid step's mixing, the ΔW of a pure Hebbian forward of an
    identical network on the same batch, and the gradients of a pure backprop step of a third copy."""
    x = _data(8, 0).get(slice(0, 8))[0]
    y = torch.arange(8) % 10
    hebbian = _network(name)
    hebbian.train()
    with torch.no_grad():
        hebbian.features(x)  # Phase 1's forward: every layer accumulates its ΔW
    delta = {n: layer.delta_w.clone() for n, layer in hebbian.hebbian_layers().items()}

    backprop = _network(name)
    backprop.set_plastic(False)
    backprop.train()
    torch.manual_seed(1)
    F.cross_entropy(backprop(x), y).backward()
    grad_bp = {n: p.grad.clone() for n, p in backprop.named_parameters()}

    hybrid = _network(name)
    hook = HybridHook(hybrid, alpha)
    hybrid.train()
    torch.manual_seed(1)  # the same dropout mask
    F.cross_entropy(hybrid(x), y).backward()
    hook.before_step()
    layers = hybrid.hebbian_layers()
    assert all(not layer.delta_w.any() for layer in layers.values())  # ΔW handed over to the gradient
    names = {n: next(k for k, p in hybrid.named_parameters() if p is layer.weight) for n, layer in layers.items()}
    return hybrid, delta, grad_bp, names


@pytest.mark.parametrize("name", ["hybrid_soft", "hybrid_optimal"])
def test_alpha_one_makes_the_conv_gradients_minus_the_hebbian_update(name):
    hybrid, delta, grad_bp, names = _one_step_gradients(name, 1.0)
    for layer, param in names.items():
        grad = dict(hybrid.named_parameters())[param].grad
        assert delta[layer].abs().max() > 0
        assert torch.equal(grad, -delta[layer]), layer
    # the head is trained by backprop alone
    assert torch.equal(hybrid.classifier.weight.grad, grad_bp["classifier.weight"])
    assert torch.equal(hybrid.classifier.bias.grad, grad_bp["classifier.bias"])


def test_a_middle_alpha_is_the_written_out_mix():
    alpha = 0.3
    hybrid, delta, grad_bp, names = _one_step_gradients("hybrid_soft", alpha)
    for layer, param in names.items():
        expected = (1 - alpha) * grad_bp[param] - alpha * delta[layer]
        torch.testing.assert_close(dict(hybrid.named_parameters())[param].grad, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), "0.5", None])
def test_alpha_outside_zero_one_is_refused(alpha):
    with pytest.raises(ValueError, match=r"alpha must be a finite number >= 0 and <= 1"):
        HybridHook(_network(), alpha)
    message = (r"supervised.alpha = None: mode 'hybrid' needs alpha" if alpha is None
               else r"supervised.alpha = .*: must be a finite number >= 0 and <= 1")
    with pytest.raises(ValueError, match=r"preset 'hybrid_soft': " + message):
        preset_config("hybrid_soft", change={"supervised": {"alpha": alpha}})


def test_the_hybrid_needs_hebbian_layers_and_no_separate_phase():
    with pytest.raises(ValueError, match=r"supervised.alpha = 0.5: applies to mode 'hybrid' only"):
        preset_config("soft", change={"supervised": {"alpha": 0.5}})
    with pytest.raises(ValueError, match=r"unsupervised.epochs = 1: a hybrid preset trains its Hebbian layers"):
        preset_config("hybrid_optimal", change={"unsupervised": {"epochs": 1}})
    with pytest.raises(ValueError, match=r"supervised.mode = 'hybrid': mixes the Hebbian layers' updates"):
        preset_config("backprop", change={"supervised": {"mode": "hybrid", "alpha": 0.5}})
    with pytest.raises(ValueError, match=r"the α-hybrid needs Hebbian layers"):
        HybridHook(build_model(get_preset("backprop") | NARROW), 0.5)
    assert preset_config("hybrid_soft").supervised.alpha == 0.5
    assert preset_config("soft").to_dict()["supervised"] == get_preset("soft")["supervised"]  # no alpha key


def test_training_resumes_from_its_epoch_checkpoint_as_if_uninterrupted(tmp_path):
    def run(epochs, path):
        model = _network("hybrid_optimal")  # BCM's sliding thresholds are state too
        return model, _train(model, HybridHook(model, 0.5), epochs=epochs, checkpoint=path)

    straight, h_straight = run(2, tmp_path / "a.pt")
    run(1, tmp_path / "b.pt")  # "interrupted" after one epoch
    resumed, h_resumed = run(2, tmp_path / "b.pt")
    keys = ("train_loss", "train_acc", "val_acc", "test_acc", "grad_norms")
    assert [[h[k] for k in keys] for h in h_resumed] == [[h[k] for k in keys] for h in h_straight]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert h_straight[0]["alpha"] == 0.5 and set(h_straight[0]["grad_norms"]) == {"conv1", "conv2", "conv3"}


def test_a_quick_hybrid_run_through_the_command_line_records_alpha(tmp_path, capsys):
    from hebblib.cli import main

    change = {"model": {"width_factor": 0.125}, "supervised": {"alpha": 0.25}}
    args = ["reproduce", "--preset", "hybrid_soft", "--quick", "--limit-train", "100", "--limit-test", "40",
            "--epochs", "1", "--out", str(tmp_path), "--no-progress", "--change", json.dumps(change)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "images/s hybrid training" in out and "1 training epochs" in out and "published: no number" in out
    (result,) = tmp_path.glob("hybrid_soft-change-*/*/seed0/results.json")
    record = json.loads(result.read_text())
    assert record["supervised"]["mode"] == "hybrid" and record["supervised"]["alpha"] == 0.25
    assert record["epochs"][0]["alpha"] == 0.25 and record["unsupervised"]["epochs"] == 0
    assert main(args) == 0 and "finished earlier; read back" in capsys.readouterr().out
    bad = ["reproduce", "--preset", "hybrid_soft", "--quick", "--out", str(tmp_path / "bad"),
           "--change", '{"supervised": {"alpha": 2}}']
    assert main(bad) == 2
    assert "supervised.alpha = 2: must be a finite number >= 0 and <= 1" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_the_bench_measures_the_three_steps_on_the_same_network(capsys):
    from hebblib.bench import COST_PATHS, bench_training_costs

    result = bench_training_costs("soft", width_factor=0.125, batch_size=16, batches=1, rounds=1, threads=1)
    assert set(result["paths"]) == set(COST_PATHS) == {"hebbian", "backprop", "hybrid"}
    for row in result["paths"].values():
        assert row["img_s"] > 0 and row["peak_mib"] >= 0 and row["epoch_45000_s"] == pytest.approx(45000 / row["img_s"])
    out = capsys.readouterr().out
    assert "Hebbian phase" in out and "α-hybrid, α = 0.5" in out and "peak memory" in out
    with pytest.raises(ValueError, match=r"preset 'backprop' has no Hebbian layers"):
        bench_training_costs("backprop")
