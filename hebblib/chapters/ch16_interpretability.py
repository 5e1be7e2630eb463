"""Chapter 16 — What did the Hebbian network learn? (spec nimmo-thesis §5, §3.3.13)

Three networks of the same shape (SoftHebb's three blocks), trained three ways, read layer by layer with
the same tools (:mod:`hebblib.interpret`):

    soft       soft WTA + SoftHebb rule, one unsupervised epoch (chapter 5)
    optimal    hard WTA + BCM + cosine + surround inhibition, one unsupervised epoch (chapters 7, 8)
    backprop   the same shape with ReLU, every layer trained end to end on the labels

* receptive fields by projected gradient ascent (PGA, thesis §3.3.13) of each layer;
* the change the next batch would make (LTP / LTD) per layer: ΔW, or −∂L/∂W for backprop;
* who wins the competition while each network trains (:class:`hebblib.interpret.CompetitionRecorder`):
  the usage entropy over training and the distribution of win rates at the end;
* how separable each layer's features are: a linear probe per layer beside a UMAP of the features.

Quick mode trains the three at ⅛ width on the first 800 subset images, a tenth kept for validation (one
Hebbian epoch; three backprop epochs); full mode reads the networks trained on all of CIFAR-10 by
``python -m hebblib reproduce --preset NAME`` from ``runs/`` (training them first when they are not there).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from matplotlib.figure import Figure

from .. import diagnostics as dg
from .. import interpret
from ..classifier import train_end_to_end
from ..data import CIFAR10_CLASSES
from ..experiments import reduced_data
from ..plots.embedding import embed_features
from ..plots.filters import normalize_images
from ..plots import style
from ..presets import build_model, get_preset, resolve_preset
from ..runtime import is_quick, quick_or, seed_everything, single_thread
from ..training import derive_seed, load_splits, stream_generator, train_hebbian

NETWORKS = ("soft", "optimal", "backprop")
PUBLISHED = {name: get_preset(name)["published"] for name in NETWORKS}
SOURCES = {name: "code README" for name in NETWORKS}
COLORS = {"soft": "tab:blue", "optimal": "tab:orange", "backprop": "tab:green"}

# Quick mode: ⅛ of every layer's width (12 → 48 → 192 channels), the first 800 subset training images
# (a tenth of them, stratified, for validation) and 400 test images; batches of 32.
QUICK_WIDTH, QUICK_TRAIN, QUICK_TEST, QUICK_BATCH = 0.125, 800, 400, 32
QUICK_BACKPROP_EPOCHS = 3
# The per-layer probe: 5 epochs in quick mode, 20 in full mode on the first 10,000 training images (layer 1's
# features are 96×15×15 = 21,600 numbers per image at full width).
PROBE_EPOCHS = (20, 5)
FULL_PROBE_TRAIN = 10_000
FULL_REPLAY_IMAGES = 5000        # full mode: the competition recorded on a replay of this many images
UMAP_POINTS = (2000, 200)        # test images embedded per layer (full, quick)
UMAP_EPOCHS = (None, 200)        # UMAP's optimisation epochs (full: umap's default, 500)
PGA = {"channels": (16, 6), "steps": (500, 20), "step_size": (1e-3, 2e-2)}  # full, quick


def _quick(quick):
    return is_quick() if quick is None else quick


# ----- 1. the networks ----------------------------------------------------------------------------------
@dataclass
class Trained:
    """One network and the data it was trained and read on: ``train``/``val``/``test`` (``DeviceDataset``s
    normalised as the network sees them), the competition ``recorder`` (None when the network was read from a
    checkpoint), the end-to-end ``history`` of a backprop network, where it came from and how long it took."""

    name: str
    model: torch.nn.Module
    train: object
    val: object
    test: object
    recorder: interpret.CompetitionRecorder | None
    origin: str
    seconds: float
    history: list | None = None
    info: dict = field(default_factory=dict)
    initial: torch.nn.Module | None = None

    @property
    def blocks(self) -> list[str]:
        return interpret.block_names(self.model)


def quick_preset(name: str) -> dict:
    """Preset ``name`` at ⅛ width (validated)."""
    preset = get_preset(name)
    preset["model"]["width_factor"] = QUICK_WIDTH
    preset["supervised"]["augment"] = False
    return resolve_preset(preset)


def train_recorded(preset: dict, train, val, test, seed: int = 0, batch_size: int = QUICK_BATCH,
                   epochs: int = QUICK_BACKPROP_EPOCHS, progress: bool = False):
    """``(network, recorder, history)``: ``preset``'s network from its seeded start, trained on ``train`` with the
    competition recorded after every batch. A Hebbian preset learns for one epoch without labels
    (``train_hebbian(callback=recorder)``); an end-to-end one by backprop for ``epochs`` epochs
    (``train_end_to_end(hook=recorder)``, ``history`` its per-epoch records; None for a Hebbian one)."""
    recorder, history = interpret.CompetitionRecorder(), None
    seed_everything(seed)
    net = build_model(preset).to(train.device)
    if preset["supervised"]["mode"] == "linear":
        train_hebbian(net, train, epochs=1, batch_size=batch_size, augment=False, progress=progress,
                      label=preset["name"], generator=stream_generator(seed, "hebbian"), callback=recorder)
    else:
        recorder.start(net)
        torch.manual_seed(derive_seed(seed, "classifier_init"))
        history = train_end_to_end(net, train, val, test, epochs=epochs, batch_size=batch_size, schedule="constant",
                                   augment=False, progress=progress, desc=preset["name"],
                                   generator=stream_generator(seed, "classifier_batches"), hook=recorder)
    return net.eval(), recorder.finish(), history


def initial_network(preset: dict, seed: int = 0):
    """The network of ``preset`` as every run of ``seed`` starts it (built right after seeding)."""
    seed_everything(seed)
    return build_model(preset).eval()


def train_quick(name: str, seed: int = 0) -> Trained:
    """Quick mode: preset ``name`` at ⅛ width on the first 800 subset images (:func:`train_recorded`: one Hebbian
    epoch, or 3 backprop epochs, batches of 32), the competition recorded after every batch. One thread."""
    preset = quick_preset(name)
    train, val, test = reduced_data(preset["data"]["normalization"], QUICK_TRAIN, QUICK_TEST)
    started = time.perf_counter()
    with single_thread():
        net, recorder, history = train_recorded(preset, train, val, test, seed)
    how = (f"quick run: width × {QUICK_WIDTH:g}, {len(train)} subset training images, "
           + ("one Hebbian epoch" if history is None else f"{QUICK_BACKPROP_EPOCHS} backprop epochs"))
    return Trained(name, net, train, val, test, recorder, how, time.perf_counter() - started, history,
                   initial=initial_network(preset, seed))


def load_full(name: str, seed: int = 0, replay: int = FULL_REPLAY_IMAGES) -> Trained:
    """Full mode: the network trained on all of CIFAR-10 by :func:`hebblib.interpret.full_data_command`,
    read from ``runs/``; trained first (resumable, ``run_preset``) when its run is not there. Its run kept no
    record of the competition, so the recorder comes from a replay: the same network from the same start,
    trained by :func:`train_recorded` on the first ``replay`` training images (batch 64; backprop one epoch)."""
    from ..training import run_preset

    started = time.perf_counter()
    found = interpret.full_data_network(name, seed)
    origin = "full-data checkpoint read from runs/"
    if found is None:
        print(f"{name}: no full-data checkpoint under runs/; training it as `{interpret.full_data_command(name)}` "
              f"does (resumable)")
        run_preset(name, seed=seed, quick=False)
        found = interpret.full_data_network(name, seed)
        origin = "full-data run made by this chapter"
    model, record = found
    preset = resolve_preset(get_preset(name))
    train, val, test = load_splits(preset["data"], source="full", limit_train=FULL_PROBE_TRAIN)
    model = model.to(train.device)
    history = record["epochs"] if record["supervised"]["mode"] != "linear" else None
    part = train.subset(torch.arange(min(replay, len(train))))
    _, recorder, _ = train_recorded(preset, part, val, test.subset(torch.arange(min(1000, len(test)))), seed,
                                    batch_size=preset["unsupervised"]["batch_size"], epochs=1, progress=True)
    return Trained(name, model.eval(), train, val, test, recorder,
                   f"{origin} ({record['run_dir']}); competition recorded on a replay of its first {len(part):,} "
                   f"training images", time.perf_counter() - started, history, {"record": record, "replayed": True},
                   initial_network(preset, seed))


def trained_networks(seed: int = 0, quick: bool | None = None) -> dict[str, Trained]:
    """The three networks: :func:`train_quick` in quick mode, :func:`load_full` otherwise."""
    make = train_quick if _quick(quick) else load_full
    return {name: make(name, seed) for name in NETWORKS}


def print_networks(nets: dict[str, Trained]) -> None:
    for name, t in nets.items():
        widths = " → ".join(str(layer.out_channels) for layer in interpret.competing_layers(t.model).values())
        extra = f"; test accuracy {t.history[-1]['test_acc']:.1f}% end to end" if t.history else ""
        print(f"{name:9s} {widths} channels; {t.origin}; {t.seconds:.0f} s{extra}")


def smallest_width(nets: dict) -> int:
    """The fewest units of any layer of any network (the demo's unit slider stops there)."""
    return min(layer.out_channels for t in nets.values() for layer in interpret.competing_layers(t.model).values())


def print_full_data_status(seed: int = 0) -> None:
    """For each network: the one command that trains it on all of CIFAR-10 (its checkpoints land under
    ``runs/``, too large for git) and whether such a run is there now."""
    for name in NETWORKS:
        run = interpret.full_data_run(name, seed)
        state = f"found: {run['run_dir']}" if run else "not under runs/ yet"
        print(f"{name:9s} `{interpret.full_data_command(name, seed)}`  ({state})")


def drift(nets: dict) -> dict:
    """``{network: {layer: mean over units of cos(W_o at initialisation, W_o trained)}}``: 1 means the layer's
    units still point where they started; a Hebbian layer that learned moves them."""
    out = {}
    for name, t in nets.items():
        before, after = interpret.competing_layers(t.initial), interpret.competing_layers(t.model)
        out[name] = {layer: float(torch.nn.functional.cosine_similarity(
            before[layer].weight.detach().flatten(1).double(), after[layer].weight.detach().flatten(1).double()).mean())
            for layer in after}
    return out


def print_drift(nets: dict) -> None:
    values = drift(nets)
    layers = list(next(iter(values.values())))
    print(f"{'network':9s} " + " ".join(f"{layer:>8s}" for layer in layers)
          + "   (mean cosine of each unit's weights with its initial weights)")
    for name, per_layer in values.items():
        print(f"{name:9s} " + " ".join(f"{per_layer[layer]:8.4f}" for layer in layers))


# ----- 2. receptive fields by projected gradient ascent ---------------------------------------------------
def receptive_fields(nets: dict[str, Trained], quick: bool | None = None) -> dict:
    """``{network: {layer: images}}``: PGA receptive fields of the first channels of every block, read after
    its activation: the whole image optimised for the unit at the centre of the map, in the network's own
    input normalisation (the ZCA too), then cut to that unit's box
    (:func:`hebblib.interpret.centre_unit_fields`). Quick mode: 6 channels, 20 steps of 0.02; full mode: 16 channels and
    the thesis's 500 steps of 0.001."""
    q = 1 if _quick(quick) else 0
    out = {}
    for name, t in nets.items():
        preprocess = interpret.input_normalizer(t.train)
        out[name] = {}
        for i, layer in enumerate(t.blocks):
            available = interpret.competing_layers(t.model)[layer].out_channels
            with single_thread():
                out[name][layer] = interpret.centre_unit_fields(
                    t.model, f"stages.{i}.act", range(min(PGA["channels"][q], available)), preprocess,
                    size=t.train.images.shape[-1], in_channels=t.train.images.shape[1], steps=PGA["steps"][q],
                    step_size=PGA["step_size"][q])
    return out


def _mosaic(images: torch.Tensor, ncols: int, gap: int = 1) -> np.ndarray:
    tiles = normalize_images(torch.nan_to_num(images, 0.5), mode="minmax")
    n, c, h, w = tiles.shape
    rows = -(-n // ncols)
    canvas = torch.ones(c, rows * (h + gap) - gap, ncols * (w + gap) - gap)
    for k in range(n):
        r, col = divmod(k, ncols)
        canvas[:, r * (h + gap):r * (h + gap) + h, col * (w + gap):col * (w + gap) + w] = tiles[k]
    return canvas.permute(1, 2, 0).numpy()


def receptive_fields_figure(fields: dict) -> Figure:
    """Rows: layers; columns: networks; each cell the PGA images of its first channels (min–max each)."""
    names = list(fields)
    layers = list(next(iter(fields.values())))
    fig = Figure(figsize=(4.2 * len(names), 1.9 * len(layers) + 0.5), layout="constrained")
    axes = fig.subplots(len(layers), len(names), squeeze=False)
    for col, name in enumerate(names):
        for row, layer in enumerate(layers):
            images = fields[name][layer]
            ax = axes[row, col]
            ax.imshow(_mosaic(images, ncols=min(6, len(images))), interpolation="nearest")
            ax.set_axis_off()
            ax.set_title(f"{name} {layer}: {images.shape[-1]}×{images.shape[-1]} px", fontsize=9)
    fig.suptitle("Receptive fields by projected gradient ascent: the input that most excites each channel")
    return fig


# ----- 3. the exercise: where does a unit look? -----------------------------------------------------------
def unit_box_solution(i: int, j: int, layers) -> torch.Tensor:
    """Reference solution: ``tensor([top, left, size])`` of the input pixels unit ``(i, j)`` sees after the
    square windows ``layers`` = [(kernel, stride, padding), ...], by the recursion
    ``start += ((k − 1)/2 − p)·jump; rf += (k − 1)·jump; jump *= s``; top = start + i·jump − (rf − 1)/2."""
    rf, jump, start = 1, 1, 0.0
    for kernel, stride, padding in layers:
        start += ((kernel - 1) / 2 - padding) * jump
        rf += (kernel - 1) * jump
        jump *= stride
    top = start + i * jump - (rf - 1) / 2
    left = start + j * jump - (rf - 1) / 2
    return torch.tensor([round(top), round(left), rf])


# the windows of SoftHebb's blocks (conv kernel/stride/padding, then the pool's) up to each layer's conv
SOFTHEBB_WINDOWS = {"conv1": [(5, 1, 2)], "conv2": [(5, 1, 2), (4, 2, 1), (3, 1, 1)],
                    "conv3": [(5, 1, 2), (4, 2, 1), (3, 1, 1), (4, 2, 1), (3, 1, 1)]}
HARDHEBB_WINDOWS = [(5, 1, 0), (2, 2, 0), (3, 1, 0), (3, 1, 0)]  # no padding (thesis Table 6)


def unit_box_cases():
    """Argument tuples ``(i, j, layers)``: SoftHebb's three layers (with padding) and HardHebb's (without)."""
    return [(0, 0, SOFTHEBB_WINDOWS["conv1"]), (3, 7, SOFTHEBB_WINDOWS["conv1"]), (0, 0, SOFTHEBB_WINDOWS["conv2"]),
            (5, 2, SOFTHEBB_WINDOWS["conv2"]), (7, 7, SOFTHEBB_WINDOWS["conv3"]), (4, 1, HARDHEBB_WINDOWS)]


def library_unit_box(i: int, j: int, layers) -> torch.Tensor:
    """The same box from :func:`hebblib.interpret.unit_box` (top, left, size)."""
    top, left, size, _ = interpret.unit_box(interpret.unit_geometry(layers), i, j)
    return torch.tensor([top, left, size])


def model_geometry(t: Trained, layer: str) -> dict:
    """:func:`hebblib.interpret.unit_geometry` of block ``layer``'s activation in the trained network."""
    return interpret.unit_geometry(t.model, f"stages.{t.blocks.index(layer)}.act")


# ----- 4. top-activating patches and the demo -------------------------------------------------------------
@dataclass
class Readout:
    """What several cells share, computed once: per network and block, the strongest response of every
    channel on the test images (``responses``), the unit geometry, the features of the splits (``features``),
    the probe records (``probes``), and UMAP embeddings (``embeddings``)."""

    nets: dict
    images: dict = field(default_factory=dict)        # network -> test images on [0, 1] (for patches)
    responses: dict = field(default_factory=dict)
    features: dict = field(default_factory=dict)
    probes: dict = field(default_factory=dict)
    embeddings: dict = field(default_factory=dict)
    fields: dict = field(default_factory=dict)

    def unit_field(self, name: str, layer: str, unit: int) -> torch.Tensor:
        """The PGA receptive field of one unit (40 steps of 0.02 in quick mode, 200 of 0.001 in full)."""
        key = (name, layer, unit)
        if key not in self.fields:
            t = self.nets[name]
            with single_thread():
                self.fields[key] = interpret.centre_unit_fields(
                    t.model, f"stages.{t.blocks.index(layer)}.act", [unit], interpret.input_normalizer(t.train),
                    size=t.train.images.shape[-1], in_channels=t.train.images.shape[1], steps=quick_or(200, 40),
                    step_size=quick_or(1e-3, 2e-2))[0]
        return self.fields[key]

    def response(self, name: str, layer: str) -> dict:
        key = (name, layer)
        if key not in self.responses:
            t = self.nets[name]
            x = t.test.get(slice(0, len(t.test)))[0]
            with single_thread():
                self.responses[key] = interpret.max_responses(t.model, f"stages.{t.blocks.index(layer)}.act", x)
        return self.responses[key]

    def raw_images(self, name: str) -> torch.Tensor:
        if name not in self.images:
            t = self.nets[name]
            self.images[name] = t.test.images.float().cpu() / 255
        return self.images[name]

    def split_features(self, name: str, layer: str) -> dict:
        key = (name, layer)
        if key not in self.features:
            t = self.nets[name]
            with single_thread():
                self.features[key] = interpret.split_features(t.model, {"train": t.train, "val": t.val, "test": t.test},
                                                              t.blocks.index(layer))
        return self.features[key]


def readout(nets: dict) -> Readout:
    return Readout(nets)


def top_patches(r: Readout, name: str, layer: str, unit: int, k: int = 8):
    """``(patches, values)``: the ``k`` test-image patches that drive ``unit`` of ``layer`` most."""
    t = r.nets[name]
    patches, values, _ = interpret.top_patches(r.raw_images(name), r.response(name, layer), model_geometry(t, layer),
                                               unit, k)
    return patches, values




def unit_demo(network: str = "soft", layer: str = "conv1", unit: int = 0, r: Readout | None = None) -> Figure:
    """The demo: one unit of one layer of one network. Left its PGA receptive field; right the 8 test
    patches (pixels as they are, before normalisation) where it responds most, with the response."""
    if r is None:
        raise ValueError("pass the chapter's readout: r=readout(nets)")
    if network not in r.nets:
        raise ValueError(f"unknown network {network!r}; valid choices: {', '.join(map(repr, r.nets))}")
    t = r.nets[network]
    if layer not in t.blocks:
        raise ValueError(f"unknown layer {layer!r}; valid choices: {', '.join(map(repr, t.blocks))}")
    channels = interpret.competing_layers(t.model)[layer].out_channels
    unit = int(unit)
    if not 0 <= unit < channels:
        raise ValueError(f"unit {unit} out of range: {network} {layer} has {channels} units (0–{channels - 1})")
    rf = r.unit_field(network, layer, unit)
    patches, values = top_patches(r, network, layer, unit)
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1, 2.6])
    ax = left.subplots()
    ax.imshow(normalize_images(rf[None].nan_to_num(0.5))[0].permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(f"PGA receptive field ({rf.shape[-1]}×{rf.shape[-1]} px)", fontsize=9)
    axes = right.subplots(2, 4)
    for a, patch, value in zip(axes.flat, patches, values):
        a.imshow(patch.clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
        a.set_title(f"{float(value):.2f}", fontsize=8)
        a.set_axis_off()
    right.suptitle(f"top-activating test patches (response above each)", fontsize=9)
    fig.suptitle(f"{network}, {layer}, unit {unit} of {channels}")
    return fig


# ----- 5. LTP / LTD per layer -------------------------------------------------------------------------------
def updates(nets: dict, batch: int = 64) -> dict:
    """``{network: {layer: ΔW}}``: the change the first ``batch`` training images would make now
    (:func:`hebblib.interpret.layer_updates`; for backprop ``−∂L/∂W``)."""
    out = {}
    for name, t in nets.items():
        x, y = t.train.get(slice(0, batch))
        with single_thread():
            out[name] = interpret.layer_updates(t.model, x, y)
    return out


def ltp_shares(deltas: dict) -> dict:
    """``{network: {layer: (share of filters with net LTP, share of weights potentiated)}}``."""
    return {name: {layer: (float((dg.ltp_ltd(d).per_filter > 0).double().mean()), float((d > 0).double().mean()))
                   for layer, d in layers.items()} for name, layers in deltas.items()}


def print_ltp_ltd(deltas: dict) -> None:
    print(f"{'network':9s} {'layer':6s} {'filters with net LTP':>21s} {'weights potentiated':>20s}")
    for name, layers in ltp_shares(deltas).items():
        for layer, (filters, weights) in layers.items():
            print(f"{name:9s} {layer:6s} {100 * filters:20.0f}% {100 * weights:19.0f}%")


def ltp_ltd_figure(deltas: dict) -> Figure:
    """Rows: networks; columns: layers. Each filter's net change Σ ΔW_o (green LTP, red LTD), sorted and
    scaled by the layer's largest, so layers and networks compare by shape, not by size."""
    names = list(deltas)
    layers = list(next(iter(deltas.values())))
    fig = Figure(figsize=(4.0 * len(layers), 2.2 * len(names) + 0.4), layout="constrained")
    axes = fig.subplots(len(names), len(layers), squeeze=False)
    for row, name in enumerate(names):
        for col, layer in enumerate(layers):
            totals = dg.ltp_ltd(deltas[name][layer]).per_filter
            totals = (totals / style.symmetric_limit(totals)).sort(descending=True).values.numpy()
            ax = axes[row, col]
            ax.bar(range(len(totals)), totals, width=1.0,
                   color=[style.LTP_COLOR if v > 0 else style.LTD_COLOR for v in totals])
            ax.axhline(0, color="black", lw=0.6)
            ax.set_ylim(-1.05, 1.05)
            share = 100 * float((totals > 0).mean())
            ax.set_title(f"{name} {layer}: net LTP in {share:.0f}% of filters", fontsize=9)
            if col == 0:
                ax.set_ylabel("Σ ΔW per filter (scaled)" if name != "backprop" else "Σ −∂L/∂W (scaled)")
            if row == len(names) - 1:
                ax.set_xlabel("filter (sorted)")
    fig.suptitle("The change one batch would make now: Hebbian ΔW (soft, optimal), −∂L/∂W (backprop)")
    return fig


# ----- 6. the competition over training ---------------------------------------------------------------------
def entropy_figure(nets: dict) -> Figure:
    """Per layer, the usage entropy of the winners in each batch (1: every unit wins equally often; 0: one
    unit wins everything) against the images seen, one line per network."""
    recorded = {name: t.recorder for name, t in nets.items() if t.recorder is not None}
    if not recorded:
        raise ValueError("no network was recorded while training (full-data checkpoints carry no record); "
                         "quick mode records it")
    layers = list(next(iter(recorded.values())).windows)
    fig = Figure(figsize=(4.3 * len(layers), 3.4), layout="constrained")
    axes = fig.subplots(1, len(layers), squeeze=False)[0]
    for ax, layer in zip(axes, layers):
        for name, rec in recorded.items():
            ax.plot(rec.images, rec.entropy()[layer], color=COLORS.get(name), label=name, lw=1.3)
        ax.set(title=layer, xlabel="training images seen", ylabel="usage entropy H", ylim=(0, 1.02))
    axes[0].legend(fontsize=8)
    fig.suptitle("Who wins, batch by batch: usage entropy of argmax_o u_o over each batch's sites")
    return fig


def win_rate_table(nets: dict):
    """A long table (pandas): network, layer, unit's win rate × number of units (1 = the uniform share),
    over all of training (from the recorders), or, for a network read from a checkpoint, on its first 1,000
    training images as it is now (eval mode, as :func:`hebblib.diagnostics.competition_diagnostics` counts)."""
    import pandas as pd

    rows = []
    for name, t in nets.items():
        counts = _counts_now(t) if t.recorder is None or t.info.get("replayed") else t.recorder.total_counts()
        for layer, c in counts.items():
            rates = dg.win_rates(c) * c.numel()
            rows += [{"network": name, "layer": layer, "relative win rate": float(v)} for v in rates]
    return pd.DataFrame(rows)


def _counts_now(t: Trained, images: int = 1000) -> dict:
    """Every unit's wins on the first ``images`` training images, the network as it is now (eval mode)."""
    recorder = interpret.CompetitionRecorder(training_only=False).start(t.model)
    t.model.eval()
    with torch.no_grad():
        for start in range(0, min(images, len(t.train)), 100):
            t.model.features(t.train.get(slice(start, min(start + 100, images)))[0])
    return recorder.finish().total_counts()


DEAD_FLOOR = 1e-3


def win_rate_figure(nets: dict) -> Figure:
    """Seaborn: the cumulative distribution of the units' win rates (× units, log scale; units that never
    won drawn at 10⁻³), one panel per layer, one curve per network, with the usage entropy in the legend."""
    import seaborn as sns

    table = win_rate_table(nets)
    table["shown"] = table["relative win rate"].clip(lower=DEAD_FLOOR)
    layers = list(dict.fromkeys(table["layer"]))
    fig = Figure(figsize=(4.3 * len(layers), 3.5), layout="constrained")
    axes = fig.subplots(1, len(layers), squeeze=False)[0]
    for ax, layer in zip(axes, layers):
        part = table[table["layer"] == layer]
        sns.ecdfplot(data=part, x="shown", hue="network", ax=ax, log_scale=(10, None), palette=COLORS)
        ax.axvline(1.0, color=style.ACCENT_COLOR, ls="--", lw=1)
        labels = []
        for name in dict.fromkeys(part["network"]):
            rates = torch.tensor(part[part["network"] == name]["relative win rate"].to_numpy())
            entropy = dg.usage_entropy(rates)
            dead = float((rates == 0).double().mean())
            labels.append(f"{name}: H = {entropy:.2f}, dead {100 * dead:.0f}%")
        legend = ax.get_legend()
        if legend is not None:
            for text, label in zip(legend.texts, labels):
                text.set_text(label)
            legend.set_title(None)
            legend.set_loc("upper left")
        ax.set(title=layer, xlabel="win rate × units (1 = uniform; dead at 10⁻³)", ylabel="fraction of units")
    fig.suptitle("Win rates over training: how evenly each network's units share the inputs")
    return fig


# ----- 7. probes and UMAP per layer ---------------------------------------------------------------------------
def layer_probes(r: Readout, quick: bool | None = None, seed: int = 0) -> dict:
    """``{network: {layer: probe records}}``: the same linear probe (:func:`hebblib.interpret.layer_probe`,
    5 epochs in quick mode, 20 in full) on each block's features (cached in ``r`` for the UMAP)."""
    epochs = PROBE_EPOCHS[1 if _quick(quick) else 0]
    for name, t in r.nets.items():
        for layer in t.blocks:
            if (name, layer) not in r.probes:
                feats = r.split_features(name, layer)
                r.probes[(name, layer)] = interpret.layer_probe(feats, t.train, t.val, t.test, epochs=epochs, seed=seed)
    return {name: {layer: r.probes[(name, layer)] for layer in t.blocks} for name, t in r.nets.items()}


def probe_accuracy(records: list) -> float:
    """The probe's test accuracy at its best validation epoch (the selection the pipeline uses), in %."""
    return max(records, key=lambda h: h["val_acc"])["test_acc"]


def print_probes(probes: dict) -> None:
    layers = list(next(iter(probes.values())))
    print(f"{'network':9s} " + " ".join(f"{layer:>8s}" for layer in layers) + "   (test accuracy of a linear probe, %)")
    for name, per_layer in probes.items():
        print(f"{name:9s} " + " ".join(f"{probe_accuracy(per_layer[layer]):8.1f}" for layer in layers))


def embeddings(r: Readout, quick: bool | None = None, seed: int = 0) -> dict:
    """``{(network, layer): (coords, labels)}``: UMAP (umap-learn) of each block's standardised test features,
    on the first 200 test images and 200 epochs in quick mode (2,000 and umap's 500 in full), computed once."""
    q = 1 if _quick(quick) else 0
    n = UMAP_POINTS[q]
    for name, t in r.nets.items():
        for layer in t.blocks:
            key = (name, layer)
            if key not in r.embeddings:
                feats = r.split_features(name, layer)["test"][:n].float()
                coords, index = embed_features(feats.cpu(), "umap", n=None, seed=seed, epochs=UMAP_EPOCHS[q])
                r.embeddings[key] = (coords, t.test.labels[:n].cpu()[index])
    return r.embeddings


def umap_figure(r: Readout, probes: dict) -> Figure:
    """Rows: networks; columns: layers. UMAP of the layer's features coloured by class, the layer's probe
    accuracy in the title."""
    import matplotlib

    names, layers = list(r.nets), r.nets[next(iter(r.nets))].blocks
    fig = Figure(figsize=(3.5 * len(layers) + 1.6, 3.2 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), len(layers), squeeze=False)
    cmap = matplotlib.colormaps[style.CLASS_CMAP]
    for row, name in enumerate(names):
        for col, layer in enumerate(layers):
            coords, labels = r.embeddings[(name, layer)]
            ax = axes[row, col]
            for c in range(10):
                chosen = (labels == c).numpy()
                ax.scatter(coords[chosen, 0].numpy(), coords[chosen, 1].numpy(), s=5, alpha=0.7, color=cmap(c),
                           label=CIFAR10_CLASSES[c])
            ax.set(xticks=[], yticks=[])
            ax.set_title(f"{name} {layer}: probe {probe_accuracy(probes[name][layer]):.1f}%", fontsize=9)
    axes[0, -1].legend(fontsize=7, markerscale=2.5, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    n = len(next(iter(r.embeddings.values()))[1])
    fig.suptitle(f"UMAP of each layer's features ({n} test images, coloured by class) beside the layer's linear probe")
    return fig


def probe_figure(probes: dict) -> Figure:
    """Seaborn: the probe's test accuracy per layer, one line per network, chance at 10 %."""
    import pandas as pd
    import seaborn as sns

    rows = [{"network": name, "layer": layer, "test accuracy (%)": probe_accuracy(records)}
            for name, per_layer in probes.items() for layer, records in per_layer.items()]
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.subplots()
    sns.pointplot(data=pd.DataFrame(rows), x="layer", y="test accuracy (%)", hue="network", palette=COLORS, ax=ax,
                  markers="o", dodge=0.2)
    ax.axhline(10, color="0.5", ls=":", lw=1)
    ax.text(0.02, 10.5, "chance", color="0.4", fontsize=8, transform=ax.get_yaxis_transform())
    ax.set_title("How linearly separable each layer's features are", fontsize=10)
    return fig


# ----- summary -------------------------------------------------------------------------------------------------
def summary_checks(nets: dict, fields: dict, deltas: dict, probes: dict) -> list:
    finite = all(bool(torch.isfinite(images).all()) for per in fields.values() for images in per.values())
    windows = [len(w) for t in nets.values() if t.recorder for w in t.recorder.windows.values()]
    best = {name: max(probe_accuracy(p) for p in per_layer.values()) for name, per_layer in probes.items()}
    signs = all(bool((d > 0).any()) and bool((d < 0).any()) for per in deltas.values() for d in per.values())
    return [
        ("PGA receptive fields: every image finite", f"{finite}", "True", finite),
        ("competition recorded after every batch of every network", f"{bool(windows) and min(windows) > 1}", "True",
         bool(windows) and min(windows) > 1),
        ("every layer's next change has both LTP and LTD", f"{signs}", "True", signs),
        ("every network's best layer beats chance (10 %)", f"{all(v > 10 for v in best.values())}", "True",
         all(v > 10 for v in best.values())),
    ]


def summary(nets: dict, probes: dict) -> None:
    """Each network's number beside its published one: in quick mode the Hebbian networks' last-layer probe and
    backprop's end-to-end accuracy; in full mode each run's own record (its classifier's max over epochs);
    then the committed full-data figures."""
    from ..notebook import report, report_committed_preset

    for name, t in nets.items():
        record = t.info.get("record")
        last = t.blocks[-1]
        if record is not None:
            measured, what = record["max_test_acc"], "the run's own read-out, max over epochs"
        elif t.history:
            measured, what = max(h["test_acc"] for h in t.history), "end to end, max over epochs"
        else:
            measured, what = max(h["test_acc"] for h in probes[name][last]), f"linear probe on {last}, max over epochs"
        note = "" if record is not None else "reduced quick-mode run: far below the published number by design"
        report(f"{name} ({what}; {t.origin})", measured, PUBLISHED[name], SOURCES[name], note)
    for name in NETWORKS:
        report_committed_preset(name, PUBLISHED[name], SOURCES[name])


__all__ = [
    "NETWORKS", "PUBLISHED", "Readout", "Trained", "drift", "embeddings", "entropy_figure", "initial_network",
    "layer_probes", "library_unit_box", "load_full", "ltp_ltd_figure", "ltp_shares", "model_geometry", "print_drift",
    "print_full_data_status", "print_ltp_ltd", "print_networks", "print_probes", "probe_accuracy", "probe_figure",
    "readout", "receptive_fields", "receptive_fields_figure", "smallest_width", "summary", "summary_checks",
    "top_patches", "train_quick", "train_recorded", "trained_networks", "umap_figure", "unit_box_cases",
    "unit_box_solution", "unit_demo", "updates", "win_rate_figure", "win_rate_table",
]
