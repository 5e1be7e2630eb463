"""The training pipeline: schedules, metrics, feature caching, an end-to-end run, resume, the NaN guard."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hebblib import classifier, runtime, training
from hebblib.classifier import extract_features, lr_factor, train_linear_probe
from hebblib.data import DeviceDataset
from hebblib.errors import HebbianDivergenceError
from hebblib.networks import lagani_short
from hebblib.presets import change_preset, get_preset
from hebblib.results import summarize_history, summarize_runs

RESULT_KEYS = {"preset", "original", "seed", "quick", "data", "device", "torch_version", "hebblib_version",
               "architecture", "num_parameters", "unsupervised", "supervised", "timings_s", "epochs",
               "final_test_acc", "best_val_epoch", "test_acc_at_best_val", "max_test_acc", "published", "source",
               "protocol", "config", "complete"}
TINY = dict(quick=True, limit_train=256, limit_test=200, supervised_epochs=1, progress=False)


def _tiny(name="lagani_short", width=0.25):
    preset = get_preset(name)
    preset["model"]["width_factor"] = width
    return preset


def _random_images(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    return DeviceDataset(images, torch.arange(n) % 10, normalization="standardize", device="cpu")


def test_lr_schedules():
    assert [lr_factor("nimmo_step", e, 20) for e in (0, 11, 12, 13, 14, 19)] == [1, 1, 0.5, 0.5, 0.25, 0.0625]
    # SoftHebb's CustomStepLR over 50 epochs halves at epochs 10, 17, 25, 30, 35, 40, 45
    assert [lr_factor("softhebb_step", e, 50) for e in (9, 10, 17, 49)] == [1, 0.5, 0.25, 0.5 ** 7]
    assert lr_factor("constant", 30, 50) == 1
    with pytest.raises(ValueError, match="unknown schedule 'cosine'"):
        lr_factor("cosine", 0, 10)


def test_summarize_history_reports_final_best_val_and_max():
    history = [{"epoch": 1, "val_acc": 50, "test_acc": 48}, {"epoch": 2, "val_acc": 60, "test_acc": 59},
               {"epoch": 3, "val_acc": 60, "test_acc": 61}, {"epoch": 4, "val_acc": 55, "test_acc": 57}]
    s = summarize_history(history)
    assert (s["final_test_acc"], s["best_val_epoch"], s["test_acc_at_best_val"], s["max_test_acc"]) == (57, 2, 59, 61)
    assert s["mean_test_acc_last_half"] == 59
    runs = summarize_runs([{"preset": "p", "original": False, "data": {}, "seed": i, **s, "final_test_acc": v}
                           for i, v in enumerate((70.0, 72.0))])
    assert runs["final_test_acc"]["mean"] == 71.0 and abs(runs["final_test_acc"]["std"] - 2 ** 0.5) < 1e-9


def test_linear_probe_batches_are_the_explicit_choice_between_both_caches():
    """The CPU probe builds each batch by overwriting the rows drawn mirrored; the head must end exactly as
    one trained on torch.where(flip, mirrored, plain) of the same draws (the formulation of other devices)."""
    from hebblib.classifier import train_linear_probe
    from hebblib.dropout import FastDropout

    g = torch.Generator().manual_seed(0)
    feats, mirrored = torch.rand(300, 40, generator=g).bfloat16(), torch.rand(300, 40, generator=g).bfloat16()
    labels = torch.randint(0, 10, (300,), generator=g)
    heads = []
    for overwrite in (True, False):
        torch.manual_seed(1)
        head = torch.nn.Sequential(FastDropout(0.5), torch.nn.Linear(40, 10))
        if overwrite:
            train_linear_probe(head, (feats, labels, mirrored), (feats, labels), (feats, labels), epochs=2,
                               progress=False, generator=torch.Generator().manual_seed(2))
        else:  # the same draws: order and flips from the generator, dropout masks from the global one
            gen = torch.Generator().manual_seed(2)
            opt = torch.optim.Adam(head.parameters(), lr=1e-3, fused=True)
            for epoch in range(2):
                order, flips = torch.randperm(300, generator=gen), torch.rand(300, generator=gen) < 0.5
                for start in range(0, 300, 64):
                    index = order[start:start + 64]
                    x = torch.where(flips[index].unsqueeze(1), mirrored[index], feats[index])
                    loss = torch.nn.functional.cross_entropy(head(x.float()), labels[index])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
        heads.append(head[1].weight.detach())
    assert torch.equal(heads[0], heads[1])


def test_feature_cache_and_mirrored_features():
    torch.manual_seed(0)
    data, net = _random_images(12), lagani_short(width_factor=0.125)
    feats = extract_features(net, data, batch_size=5, progress=False)
    assert feats.shape == (12, net.num_features) and feats.dtype == torch.float16
    mirrored = extract_features(net, data, batch_size=5, flip=True, progress=False)
    x, _ = data.get(slice(0, 12), torch.ones(12, dtype=torch.bool))
    with torch.no_grad():
        expected = net.eval().features(x)
    torch.testing.assert_close(mirrored.float(), expected, rtol=1e-2, atol=1e-2)


class _ScaledFeatures(torch.nn.Module):
    """Features = the image's first 4 pixel values × scale; counts the images it saw."""

    num_features = 4

    def __init__(self, scales):
        super().__init__()
        self.scales, self.images_seen = scales, 0

    def features(self, x):
        start = self.images_seen
        self.images_seen += len(x)
        scale = torch.tensor([self.scales(i) for i in range(start, start + len(x))]).unsqueeze(1)
        return x.flatten(1)[:, :4] * scale


def test_feature_cache_switches_to_bfloat16_in_place_without_recomputing():
    data = _random_images(25)
    x, _ = data.get(slice(0, 25))
    # images 0-9 fit float16; image 12 (third batch of 5) is scaled beyond its range (65504)
    model = _ScaledFeatures(lambda i: 1e6 if i == 12 else 1.0)
    with pytest.warns(UserWarning, match="features: features exceed the float16 range; caching them as bfloat16"):
        feats = extract_features(model, data, batch_size=5, progress=False)
    assert feats.dtype == torch.bfloat16 and model.images_seen == 25  # every image once
    expected = x.flatten(1)[:, :4].clone()
    expected[12] *= 1e6
    # rows written as float16 before the switch, then converted: bfloat16's precision (8 bits)
    torch.testing.assert_close(feats.float(), expected, rtol=2 ** -7, atol=1e-3)
    assert torch.isfinite(feats).all()


def test_feature_cache_batches_by_device_and_stays_float16_when_it_fits():
    data = _random_images(250)
    model = _ScaledFeatures(lambda i: 1.0)
    calls = []
    model.features = (lambda f: (lambda x: calls.append(len(x)) or f(x)))(model.features)
    feats = extract_features(model, data, progress=False)
    assert feats.dtype == torch.float16 and calls == [200, 50]  # the CPU batch


def test_linear_probe_learns_separable_features():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(200) % 10
    feats = torch.nn.functional.one_hot(labels, 10).float() * 3 + 0.1 * torch.randn(200, 10, generator=g)
    head = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(10, 10))
    history = train_linear_probe(head, (feats.half(), labels, feats.half()), (feats, labels), (feats, labels),
                                 epochs=5, lr=0.05, generator=g, progress=False)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    assert history[-1]["test_acc"] == 100.0 and history[-1]["train_loss"] < history[0]["train_loss"]


def test_layerwise_trains_one_layer_per_epoch():
    net, data = lagani_short(width_factor=0.125), _random_images(16)
    stats = training.train_hebbian(net, data, batch_size=8, layerwise=True, progress=False)
    assert stats["images"] == 16 * 3
    assert [int(layer.num_updates) for layer in net.hebbian_layers().values()] == [2, 2, 2]
    assert all(layer.plastic for layer in net.hebbian_layers().values())


def test_nan_guard_names_preset_layer_and_batch():
    preset = _tiny()
    preset["hebbian"]["explode_threshold"] = 1e-4  # every weight is above this: it "explodes" at once
    net = training.build_model(preset)
    with pytest.raises(HebbianDivergenceError) as info:
        training.train_hebbian(net, _random_images(), batch_size=8, progress=False, label="preset 'lagani_short'")
    message = str(info.value)
    assert "preset 'lagani_short'" in message and "'conv1'" in message
    assert "epoch 1, batch 1/5" in message and "update step 1" in message


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One tiny quick run (256 train / 200 test images, 1 classifier epoch), shared by the tests below."""
    out = tmp_path_factory.mktemp("runs")
    return out, training.run_preset(_tiny(), out=out, **TINY)


def test_quick_end_to_end_run_writes_results(finished_run):
    tmp_path, result = finished_run
    assert RESULT_KEYS <= set(result) and result["complete"]
    assert result["data"]["source"] == "subset" and result["data"]["n_test"] == 200
    assert result["data"]["n_train"] + result["data"]["n_val"] == 256 and 20 <= result["data"]["n_val"] <= 30
    assert result["unsupervised"]["images"] == result["data"]["n_train"]
    assert result["unsupervised"]["images_per_s"] > 0
    assert result["supervised"]["dropout_mask"] == "1 random bit a value"  # p = 0.5 on the CPU
    assert set(result["timings_s"]) == {"data", "unsupervised", "features", "supervised", "total"}
    assert set(result["epochs"][0]) == {"epoch", "lr", "train_loss", "train_acc", "val_acc", "test_acc"}
    on_disk = json.loads((tmp_path / "lagani_short").glob("*/seed0/results.json").__next__().read_text())
    assert on_disk["final_test_acc"] == result["final_test_acc"]
    again = training.run_preset(_tiny(), out=tmp_path, **TINY)  # finished: read back, not retrained
    assert again["reused"] and again["final_test_acc"] == result["final_test_acc"]


def test_resume_after_interruption_skips_the_hebbian_phase(tmp_path, monkeypatch, finished_run):
    partial = training.run_preset(_tiny(), out=tmp_path, stop_after="unsupervised", **TINY)
    assert not partial["complete"] and not partial["unsupervised"]["resumed_from_checkpoint"]

    def must_not_run(*args, **kwargs):
        raise AssertionError("the Hebbian phase ran again instead of resuming from its checkpoint")

    monkeypatch.setattr(training, "train_hebbian", must_not_run)
    resumed = training.run_preset(_tiny(), out=tmp_path, **TINY)
    assert resumed["complete"] and resumed["unsupervised"]["resumed_from_checkpoint"]
    uninterrupted = finished_run[1]
    assert resumed["epochs"] == uninterrupted["epochs"]  # resuming changes nothing


def test_backprop_preset_trains_end_to_end(tmp_path):
    result = training.run_preset(_tiny("backprop", 0.125), out=tmp_path, **TINY)
    assert result["supervised"]["mode"] == "end_to_end" and result["unsupervised"]["images"] == 0
    assert 0 <= result["final_test_acc"] <= 100
    assert result["timings_s"]["supervised"] == pytest.approx(result["epochs"][0]["seconds"])


def test_backprop_in_bf16_runs_its_products_in_bf16_and_stays_near_fp32(tmp_path):
    """precision='bf16' for an end-to-end preset: the convolutions see bf16 operands in training and
    evaluation (observed by a hook), the weights and Adam's state stay fp32, the run is recorded and keyed as
    bf16, and one epoch ends near the fp32 run of the same seed (same data order, same initial weights)."""
    seen = []

    def watch(module, inputs, output):
        seen.append((module.training, inputs[0].dtype, output.dtype))

    results = {}
    for precision in ("fp32", "bf16"):
        run = training.plan_run(_tiny("backprop", 0.125), out=tmp_path, precision=precision, **TINY)
        training.prepare_data(run, notice=None)
        training.run_folder(run)
        model = training.initial_model(run)
        first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        handle = first.register_forward_hook(watch) if precision == "bf16" else None
        history = training.train_classifier(run, model)
        if handle is not None:
            handle.remove()
        assert all(p.dtype == torch.float32 for p in model.parameters())
        results[precision] = (run, history, model)
    assert {(mode, dt) for mode, _, dt in seen} == {(True, torch.bfloat16), (False, torch.bfloat16)}
    (run32, h32, m32), (run16, h16, m16) = results["fp32"], results["bf16"]
    assert run16.precision.name == "bf16" and run16.run_dir != run32.run_dir
    assert h16[0]["train_loss"] == pytest.approx(h32[0]["train_loss"], rel=0.05)
    w32, w16 = next(m32.parameters()).detach(), next(m16.parameters()).detach()
    assert not torch.equal(w32, w16) and (w16 - w32).norm() / w32.norm() < 0.05


def test_the_hybrid_refuses_bf16_before_any_data_and_auto_trains_it_in_fp32(tmp_path, monkeypatch):
    from hebblib import runtime

    with pytest.raises(ValueError, match="precision 'bf16'.*hybrid_soft.*fp32 only.*valid choices: 'fp32', 'auto'"):
        training.plan_run("hybrid_soft", out=tmp_path, precision="bf16", **TINY)
    monkeypatch.setattr(runtime, "fast_bf16", lambda *a, **k: (True, "pretend: fast bf16"))
    run = training.plan_run("hybrid_soft", out=tmp_path, precision="auto", quick=True, progress=False)
    training.prepare_data(run, notice=None)
    training.run_folder(run)
    assert (run.precision.name, run.precision.reason) == ("fp32", "the α-hybrid trains in fp32 only")
    with pytest.raises(ValueError, match="the α-hybrid .hook. trains in fp32 only"):
        classifier.train_end_to_end(torch.nn.Linear(1, 1), run.train, run.val, run.test, epochs=1,
                                    hook=object(), precision="bf16")


@pytest.mark.parametrize("has_bf16", [False, True])
def test_bf16_backprop_on_a_cpu_without_bf16_instructions_warns_that_it_is_slow(tmp_path, monkeypatch, has_bf16):
    """Only where the CPU has no bf16 instructions (autocast's bf16 products are a generic loop there); the
    run still trains as asked."""
    import warnings

    run = training.plan_run(_tiny("backprop", 0.125), out=tmp_path, precision="bf16", **TINY)
    training.prepare_data(run, notice=None)
    monkeypatch.setattr(classifier, "cpu_has_bf16_instructions", lambda: has_bf16)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(run.train.images[0].numel(), 10))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = classifier.train_end_to_end(model, run.train, run.val, run.test, epochs=1, precision="bf16",
                                              progress=False)
    slow = [w for w in caught if "without bf16 instructions" in str(w.message)]
    assert len(history) == 1
    if has_bf16:
        assert not slow
    else:
        assert len(slow) == 1 and "precision='bf16'" in str(slow[0].message)
        assert "'fp32' or 'auto'" in str(slow[0].message)


def _without_seconds(records):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in records]


def test_interrupted_backprop_resumes_after_its_last_finished_epoch(tmp_path, monkeypatch):
    options = {**TINY, "supervised_epochs": 3}
    uninterrupted = training.run_preset(_tiny("backprop", 0.125), out=tmp_path / "a", **options)

    calls = {"evaluations": 0}
    evaluate = classifier._correct_on_images

    def stop_in_epoch_three(model, data, *args, **kwargs):  # two evaluations (val, test) per epoch
        calls["evaluations"] += 1
        if calls["evaluations"] == 5:
            raise KeyboardInterrupt
        return evaluate(model, data, *args, **kwargs)

    monkeypatch.setattr(classifier, "_correct_on_images", stop_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        training.run_preset(_tiny("backprop", 0.125), out=tmp_path / "b", **options)
    saved = torch.load(next((tmp_path / "b").glob("backprop/*/seed0/end_to_end.pt")), weights_only=False)
    assert [record["epoch"] for record in saved["history"]] == [1, 2]

    def no_epoch_twice(model, data, *args, **kwargs):
        calls["evaluations"] += 1
        return evaluate(model, data, *args, **kwargs)

    calls["evaluations"] = 0
    monkeypatch.setattr(classifier, "_correct_on_images", no_epoch_twice)
    resumed = training.run_preset(_tiny("backprop", 0.125), out=tmp_path / "b", **options)
    assert calls["evaluations"] == 2  # only epoch 3 ran
    assert _without_seconds(resumed["epochs"]) == _without_seconds(uninterrupted["epochs"])  # bit for bit
    assert not list((tmp_path / "b").glob("backprop/*/seed0/end_to_end.pt"))  # superseded by supervised.pt


def test_bad_limits_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="limit_train must be an int >= 20"):
        training.run_preset(_tiny(), out=tmp_path, quick=True, limit_train=5, progress=False)


def test_end_to_end_training_flushes_subnormals_and_restores_the_default(monkeypatch):
    from hebblib.runtime import flush_denormals

    tiny = torch.tensor([1e-40])  # subnormal in float32
    with flush_denormals() as supported:
        if not supported:
            pytest.skip("this CPU cannot flush subnormals")
        assert float(tiny * 1.0) == 0.0
    assert float(tiny * 1.0) > 0.0  # PyTorch's default again
    seen = []

    class Stop(Exception):
        pass

    def adam_that_records_the_flush(*args, **kwargs):  # the first thing training builds
        seen.append(float(tiny * 1.0))
        raise Stop

    monkeypatch.setattr(classifier.torch.optim, "Adam", adam_that_records_the_flush)
    with pytest.raises(Stop):
        classifier.train_end_to_end(torch.nn.Linear(1, 1), None, None, None, epochs=1)
    assert seen == [0.0]
    assert float(tiny * 1.0) > 0.0  # restored after an interrupted run too


def test_the_named_steps_one_by_one_give_the_same_run(tmp_path, finished_run):
    run = training.plan_run(_tiny(), out=tmp_path, **TINY)
    training.prepare_data(run, notice=None)
    training.run_folder(run)
    model = training.initial_model(run)
    training.hebbian_phase(run, model)
    features = training.split_features(run, model)
    history = training.train_classifier(run, model, features)
    record = training.result_record(run, model, history)
    whole = finished_run[1]
    assert history == whole["epochs"] and record["config_hash"] == whole["config_hash"]
    assert record["final_test_acc"] == whole["final_test_acc"] and record["complete"]
    # the timings name the CPU they were taken on
    assert record["cpu"] == {"model": runtime.cpu_model(),
                             "flags": [f for f in runtime.SPEED_FLAGS if f in runtime.cpu_flags()]}
    assert isinstance(record["cpu"]["model"], str) and record["cpu"]["model"]


def test_seeds_are_derived_in_one_place():
    import inspect

    assert [training.derive_seed(3, s) for s in ("hebbian", "classifier_init", "classifier_batches")] == \
        [3001, 3002, 3003]
    with pytest.raises(ValueError, match="unknown seed stream 'probe'"):
        training.derive_seed(0, "probe")
    assert inspect.getsource(training).count("* 1000") == 1


def test_the_record_holds_the_settings_each_layer_used(tmp_path, finished_run):
    used = finished_run[1]["layers_used"]
    assert list(used) == ["conv1", "conv2", "conv3"]
    assert used["conv1"]["rule"] == {"name": "instar"} and used["conv1"]["competition"]["name"] == "hard_wta"
    assert used["conv1"]["activation"] == "cosine" and used["conv1"]["lr"] == 0.1
    # per-layer settings win over the shared ones, and the record says what each layer got
    preset = change_preset(_tiny("soft", 0.125), {"layers": [{"lr": 0.2}, {}, {}]})
    partial = training.run_preset(preset, out=tmp_path, stop_after="unsupervised", **TINY)
    used = partial["layers_used"]
    assert [used[name]["lr"] for name in ("conv1", "conv2", "conv3")] == [0.2, 0.08, 0.05]
    assert used["conv3"]["competition"]["name"] == "soft_wta" and used["conv3"]["competition"]["temperature"] == 4.0


def test_unknown_run_options_are_named(tmp_path):
    with pytest.raises(ValueError, match="unknown run option 'epochs'; valid options: 'seed'"):
        training.run_preset(_tiny(), out=tmp_path, epochs=3)


def test_the_trained_network_is_read_back_from_the_runs_checkpoint(finished_run, tmp_path):
    result = finished_run[1]
    net = training.hebbian_network(result, _tiny())
    saved = torch.load(next(finished_run[0].glob("lagani_short/*/seed0/unsupervised.pt")), weights_only=True)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in saved["model"].items())
    with pytest.raises(FileNotFoundError, match="no Hebbian checkpoint of this run"):
        training.hebbian_network({**result, "config_hash": "another"}, _tiny())


# ----- an interrupted Hebbian phase of several epochs goes on after its last finished epoch ---------------
def _epoch_model(name):
    torch.manual_seed(0)
    if name in ("miconi", "krotov_hopfield"):
        from hebblib.networks import build_network
        return build_network(name, width_factor=0.125)
    config = get_preset(name)
    config["model"]["width_factor"] = 0.125
    return training.build_model(config)


class _StopAt:
    """A callback that counts batches and raises KeyboardInterrupt at batch ``at`` (1-based; None: never)."""

    def __init__(self, at=None):
        self.at, self.calls = at, 0

    def __call__(self, model):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("name, layerwise", [("miconi", False), ("soft", False), ("optimal", False),
                                             ("temporal", False), ("adaptive", False), ("krotov_hopfield", False),
                                             ("soft", True)])
def test_interrupted_hebbian_epochs_resume_bit_identical(tmp_path, name, layerwise):
    data = _random_images(24)
    options = dict(epochs=3, batch_size=8, layerwise=layerwise, progress=False, warmup_batches=2)
    per_epoch = 3  # 24 images in batches of 8
    units = 3 * (len(_epoch_model(name).hebbian_layers()) if layerwise else 1)

    model = _epoch_model(name)
    whole = training.train_hebbian(model, data, generator=torch.Generator().manual_seed(1), **options)
    expected = model.state_dict()

    path, key = tmp_path / "epochs.pt", "run-key"
    stop = _StopAt(at=2 * per_epoch + 2)  # inside the third epoch (unit), after two were saved
    with pytest.raises(KeyboardInterrupt):
        training.train_hebbian(_epoch_model(name), data, generator=torch.Generator().manual_seed(1),
                               checkpoint=path, checkpoint_key=key, callback=stop, **options)
    assert torch.load(path, weights_only=True)["done"] == 2

    count = _StopAt()
    model = _epoch_model(name)  # a fresh start, as a new process would make
    resumed = training.train_hebbian(model, data, generator=torch.Generator().manual_seed(1),
                                     checkpoint=path, checkpoint_key=key, callback=count, **options)
    assert count.calls == (units - 2) * per_epoch  # the two saved epochs did not run again
    assert resumed["images"] == whole["images"]
    for k, v in expected.items():
        assert torch.equal(model.state_dict()[k], v), f"{name}: {k} differs after resuming"


def test_hebbian_epoch_checkpoint_of_another_run_is_not_used(tmp_path):
    data, path = _random_images(16), tmp_path / "epochs.pt"
    options = dict(epochs=2, batch_size=8, progress=False)
    with pytest.raises(KeyboardInterrupt):
        training.train_hebbian(_epoch_model("soft"), data, generator=torch.Generator().manual_seed(1),
                               checkpoint=path, checkpoint_key="a", callback=_StopAt(at=3), **options)
    count = _StopAt()
    training.train_hebbian(_epoch_model("soft"), data, generator=torch.Generator().manual_seed(1),
                           checkpoint=path, checkpoint_key="b", callback=count, **options)
    assert count.calls == 4  # key "b" trains both epochs from the start


# ----- flip averaging in the linear read-out (softhebb_flip) ----------------------------------------------
def test_flip_averaged_accuracy_against_a_per_image_loop():
    g = torch.Generator().manual_seed(0)
    n, d = 60, 12
    feats, mirror = torch.randn(n, d, generator=g).half(), torch.randn(n, d, generator=g).half()
    labels = torch.randint(0, 10, (n,), generator=g)
    head = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(d, 10))
    history = train_linear_probe(head, (feats, labels), (feats[:30], labels[:30], mirror[:30]),
                                 (feats[30:], labels[30:], mirror[30:]), epochs=2, progress=False,
                                 generator=torch.Generator().manual_seed(1))
    linear = head[1]
    for split, rows in (("val", range(30)), ("test", range(30, 60))):
        averaged = plain = 0
        for i in rows:  # one image at a time: mean of the two views' logits, then the largest
            a, b = linear(feats[i].float()), linear(mirror[i].float())
            averaged += int(torch.argmax((a + b) / 2) == labels[i])
            plain += int(torch.argmax(a) == labels[i])
        assert history[-1][f"{split}_acc"] == pytest.approx(100 * averaged / 30)
        assert history[-1][f"{split}_acc_plain"] == pytest.approx(100 * plain / 30)
    assert history[-1]["val_acc"] != history[-1]["val_acc_plain"] or history[-1]["test_acc"] != history[-1]["test_acc_plain"]


def test_softhebb_flip_runs_and_keeps_the_one_view_accuracy(tmp_path):
    result = training.run_preset(_tiny("softhebb_flip", 0.125), out=tmp_path, **TINY)
    last = result["epochs"][-1]
    assert {"val_acc_plain", "test_acc_plain"} <= set(last) and 0 <= last["test_acc"] <= 100
    assert result["final_test_acc"] == last["test_acc"]  # the flip-averaged accuracy is the run's


def test_flip_average_is_checked():
    with pytest.raises(ValueError, match="flip_average"):
        change_preset(get_preset("backprop"), {"supervised": {"flip_average": True}})
    with pytest.raises(ValueError, match="flip_average"):
        change_preset(get_preset("soft"), {"supervised": {"flip_average": "yes"}})


# ----- a run that differs in the classifier only adopts a finished run's Hebbian phase --------------------
def test_adopted_hebbian_phase_gives_the_run_it_would_have_trained(tmp_path):
    options = {**TINY, "supervised_epochs": 2}
    source = training.run_preset(_tiny("softhebb_paper", 0.125), out=tmp_path / "a", **options)
    fresh = training.run_preset(_tiny("softhebb_flip", 0.125), out=tmp_path / "b", **options)
    source_dir = Path(source["run_dir"]).parent  # the folder holding seed0/
    adopted = training.run_preset(_tiny("softhebb_flip", 0.125), out=tmp_path / "c", hebbian_from=source_dir,
                                  **options)
    assert adopted["unsupervised"]["adopted_from"] == str(source_dir / "seed0")
    assert adopted["epochs"] == fresh["epochs"]  # bit for bit: the phase draws nothing from the classifier
    again = training.hebbian_network(adopted).state_dict()
    for key, value in training.hebbian_network(fresh).state_dict().items():
        assert torch.equal(again[key], value), key


def test_hebbian_from_a_different_run_is_refused_naming_the_difference(tmp_path):
    source = training.run_preset(_tiny("softhebb_paper", 0.125), out=tmp_path / "a", **TINY)
    other = change_preset(_tiny("softhebb_paper", 0.125), {"unsupervised": {"batch_size": 16}})
    with pytest.raises(ValueError, match="its unsupervised differs"):
        training.run_preset(other, out=tmp_path / "b", hebbian_from=Path(source["run_dir"]), **TINY)
    with pytest.raises(ValueError, match="no such folder"):
        training.run_preset(_tiny("softhebb_flip", 0.125), out=tmp_path / "c", hebbian_from=tmp_path / "nothing",
                            **TINY)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no finished run there"):
        training.run_preset(_tiny("softhebb_flip", 0.125), out=tmp_path / "c", hebbian_from=tmp_path / "empty",
                            **TINY)


def test_the_probe_scores_held_out_rows_alike_in_any_batch_size():
    from hebblib.classifier import EVAL_BATCH_CPU, _correct_on_features

    g = torch.Generator().manual_seed(0)
    feats, labels = torch.randn(700, 50, generator=g).half(), torch.randint(0, 10, (700,), generator=g)
    mirrored = torch.randn(700, 50, generator=g).half()
    head = torch.nn.Linear(50, 10).eval()
    logits = head(feats.float())
    assert int(_correct_on_features(head, feats, labels)) == int((logits.argmax(1) == labels).sum())
    assert EVAL_BATCH_CPU < 700  # several batches, the last one short
    averaged, plain = _correct_on_features(head, feats, labels, mirrored)
    both = (logits + head(mirrored.float())) / 2
    assert int(averaged) == int((both.argmax(1) == labels).sum())
    assert int(plain) == int((logits.argmax(1) == labels).sum())


def test_the_probe_steps_with_fused_adam_where_torch_has_it():
    from hebblib.classifier import probe_optimizer

    head = torch.nn.Linear(5, 2)
    assert probe_optimizer(head.parameters(), "adam", 1e-3, torch.device("cpu")).defaults["fused"] is True
    assert isinstance(probe_optimizer(head.parameters(), "sgd", 1e-3, torch.device("cpu")), torch.optim.SGD)
    with pytest.raises(ValueError, match="'adamw'"):
        probe_optimizer(head.parameters(), "adamw", 1e-3, torch.device("cpu"))
