"""What did a trained network learn? Read-outs that work on any block network of hebblib (Hebbian or
trained by backprop), layer by layer (spec nimmo-thesis §5, §3.3.13).

* :class:`CompetitionRecorder`: who wins the competition while the network trains. A callback for
  :func:`hebblib.training.train_hebbian` (``callback=recorder``) and a hook for
  :func:`hebblib.classifier.train_end_to_end` (``hook=recorder``): at every site (image, position) of a
  layer's response ``u`` the winner is ``argmax_o u_o``; per window of batches it keeps each unit's wins,
  from which the usage entropy ``H = −Σ p_o log p_o / log C`` over training follows
  (:mod:`hebblib.diagnostics`).
* :func:`split_features` and :func:`layer_probe`: the features after each block and the linear probe
  on them, the same read-out for every layer.
* :func:`unit_geometry`, :func:`unit_box`: which input pixels a unit at position ``(i, j)`` of a layer
  sees, from the kernels, strides and paddings on the way, by the recursion (``k' = d (k − 1) + 1``)

      rf_l = rf_{l−1} + (k'_l − 1)·jump_{l−1},
      start_l = start_{l−1} + ((k'_l − 1)/2 − p_l)·jump_{l−1},
      jump_l = jump_{l−1}·s_l,

  where ``start`` is the centre of unit 0 in input pixels; unit ``i`` is centred on ``start + i·jump``
  and sees ``rf`` pixels around it.
* :func:`max_responses` and :func:`top_patches`: the image patches that drive a unit most (its
  top-activating patches), cut out of the images at the unit's box.
* :func:`layer_updates`: the change the next batch would make to every layer: the Hebbian ``ΔW`` of a
  Hebbian layer, ``−∂L/∂W`` (cross-entropy) of a layer trained by backprop; split into LTP and LTD with
  :func:`hebblib.diagnostics.ltp_ltd`.
* :func:`full_data_network`: a network trained on all of CIFAR-10 by ``python -m hebblib reproduce``,
  read back from its run folder under ``runs/`` when it is there.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from . import diagnostics as dg
from .data import CIFAR10_MEAN, CIFAR10_STD


# ----- the layers that compete ---------------------------------------------------------------------------
def competing_layers(model) -> dict[str, nn.Module]:
    """The conv layers whose output channels compete, by name, in forward order: the Hebbian layers of a
    :class:`hebblib.HebbianNet` (less grouped ones, whose units compete within a group or over space), or,
    in a network without Hebbian layers (``backprop``), its ``nn.Conv2d`` layers named ``conv1``,
    ``conv2``, ... as their Hebbian twins are."""
    hebbian = model.hebbian_layers() if hasattr(model, "hebbian_layers") else {}
    if hebbian:
        return {name: layer for name, layer in hebbian.items() if getattr(layer, "groups", 1) == 1}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups == 1]
    return {f"conv{i}": m for i, m in enumerate(convs, start=1)}


class CompetitionRecorder:
    """Win counts of every competing layer (:func:`competing_layers`) while a network trains.

    While a layer is in training mode (in any mode with ``training_only=False``), a forward hook counts, for
    each unit ``o``, the sites (image, position) where ``o = argmax u`` (what a Hebbian layer's ``win_counts``
    counts; for a backprop layer the same argmax over its channels). Every ``every`` batches the counts since
    the last record are kept as one window: ``windows[layer]`` is a list of (C,) tensors, ``images`` the images
    seen at the end of each window.

    Use it as ``train_hebbian(model, data, callback=recorder)`` (it attaches its hooks in ``start`` and
    records after every update) or as ``train_end_to_end(..., hook=recorder)`` after ``recorder.start(model)``;
    call :meth:`stop` afterwards to remove the hooks."""

    def __init__(self, every: int = 1, training_only: bool = True):
        if not (isinstance(every, int) and every >= 1):
            raise ValueError(f"every must be an int >= 1, got {every!r}")
        self.every, self.training_only = every, bool(training_only)
        self.windows: dict[str, list[torch.Tensor]] = {}
        self.images: list[int] = []
        self._handles, self._pending, self._seen, self._steps = [], {}, 0, 0

    # --- attaching ---
    def start(self, model) -> "CompetitionRecorder":
        self.stop()
        layers = competing_layers(model)
        if not layers:
            raise ValueError(f"{type(model).__name__} has no conv layer whose channels compete")
        first = next(iter(layers))
        for name, layer in layers.items():
            self.windows.setdefault(name, [])
            self._pending[name] = torch.zeros(layer.out_channels, dtype=torch.float64)
            self._handles.append(layer.register_forward_hook(self._counter(name, name == first)))
        return self

    def stop(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _counter(self, name: str, first: bool):
        def hook(module, inputs, u):
            if module.training or not self.training_only:
                self._pending[name] += dg.winner_counts(u)
                if first:
                    self._seen += u.shape[0]
        return hook

    # --- recording ---
    def record(self) -> None:
        """One step done: every ``every`` steps, close a window."""
        self._steps += 1
        if self._steps % self.every == 0:
            self._close()

    def _close(self) -> None:
        if not any(bool(c.any()) for c in self._pending.values()):
            return
        for name, counts in self._pending.items():
            self.windows[name].append(counts.clone())
            counts.zero_()
        self.images.append(self._seen)

    def __call__(self, model) -> None:  # train_hebbian's callback, after each batch's update
        self.record()

    def before_step(self) -> None:  # train_end_to_end's hook
        pass

    def after_step(self) -> None:
        self.record()

    def epoch_summary(self) -> dict:
        return {}

    # --- what was recorded ---
    def finish(self) -> "CompetitionRecorder":
        """Close the last, partial window and remove the hooks."""
        self._close()
        self.stop()
        return self

    def entropy(self) -> dict[str, list[float]]:
        """Per layer, the usage entropy (:func:`hebblib.diagnostics.usage_entropy`) of every window."""
        return {name: [dg.usage_entropy(c) for c in windows] for name, windows in self.windows.items()}

    def total_counts(self) -> dict[str, torch.Tensor]:
        """Per layer, every unit's wins over the whole training."""
        return {name: torch.stack(windows).sum(0) for name, windows in self.windows.items() if windows}


# ----- features and the probe of each block ------------------------------------------------------------------
def block_names(model) -> list[str]:
    """A name per block of a :class:`hebblib.HebbianNet`: the name of the first competing layer inside it
    (``conv1``, ``conv2``, ...), else ``block<k>``."""
    layers = competing_layers(model)
    names = []
    for k, stage in enumerate(model.stages, start=1):
        inside = {id(m) for m in stage.modules()}
        names.append(next((n for n, layer in layers.items() if id(layer) in inside), f"block{k}"))
    return names


@torch.no_grad()
def split_features(model, splits: dict, block: int, dtype=torch.float32) -> dict[str, torch.Tensor]:
    """The flattened output of block ``block`` (counting from 0) for each ``DeviceDataset`` of ``splits``
    (``{"train": ..., "test": ...}``), the network in eval mode (no learning, unflipped images)."""
    from .classifier import extract_features
    from .experiments import FirstBlocks

    extractor = FirstBlocks(model, block + 1)
    return {name: extract_features(extractor, data, dtype=dtype, progress=False) for name, data in splits.items()}


def layer_probe(features: dict, train, val, test, *, epochs: int = 5, lr: float = 1e-3, batch_size: int = 64,
                dropout: float = 0.5, seed: int = 0) -> list[dict]:
    """The linear probe on cached ``features`` (``{"train", "val", "test"}``, from :func:`split_features`):
    ``Dropout(dropout) → Linear(F, classes)`` trained with Adam (:func:`hebblib.classifier.train_linear_probe`),
    seeded. Returns its per-epoch records (accuracies in %)."""
    from .classifier import train_linear_probe
    from .dropout import FastDropout
    from .runtime import single_thread

    torch.manual_seed(seed)
    classes = int(train.labels.max()) + 1
    head = nn.Sequential(FastDropout(dropout), nn.Linear(features["train"].shape[1], classes)).to(train.device)
    with single_thread():
        return train_linear_probe(head, (features["train"], train.labels), (features["val"], val.labels),
                                  (features["test"], test.labels), epochs=epochs, lr=lr, batch_size=batch_size,
                                  schedule="constant", augment=False, generator=torch.Generator().manual_seed(seed + 1),
                                  progress=False)


def input_normalizer(data):
    """The function that maps images on [0, 1] to what a network trained on ``data`` (a ``DeviceDataset``)
    sees: its standardisation, its fitted ZCA, or nothing. For PGA receptive fields and patches."""
    if data.normalization == "standardize":
        statistics = (getattr(data, "mean", CIFAR10_MEAN), getattr(data, "std", CIFAR10_STD))

        def standardize(x):
            mean, std = (torch.tensor(v, device=x.device, dtype=x.dtype).view(1, -1, 1, 1) for v in statistics)
            return (x - mean) / std
        return standardize
    if data.normalization == "zca":
        zca = data.zca
        return lambda x: zca(x.to(next(iter(zca.buffers())).device))
    return lambda x: x


# ----- where a unit looks ---------------------------------------------------------------------------------
def _window_layers(model, target) -> list[tuple]:
    """(kernel, stride, padding, dilation) pairs of every conv and pool of ``model`` in registration order,
    up to ``target`` (a submodule or its name; inclusive)."""
    target = model.get_submodule(target) if isinstance(target, str) else target
    inside = {id(m) for m in target.modules()}
    modules = list(model.modules())
    found = [i for i, m in enumerate(modules) if id(m) in inside]
    if not found:
        raise ValueError(f"target {type(target).__name__} is not a submodule of the model")
    out = []
    for module in modules[: max(found) + 1]:
        if hasattr(module, "kernel_size") and hasattr(module, "stride"):
            kernel = _pair(module.kernel_size)
            stride = _pair(module.stride if module.stride is not None else module.kernel_size)
            padding = getattr(module, "padding", 0)
            if isinstance(padding, str):
                raise ValueError(f"padding={padding!r} of {type(module).__name__}: give the padding in pixels")
            out.append((kernel, stride, _pair(padding), _pair(getattr(module, "dilation", 1))))
    return out


def unit_geometry(layers, target=None) -> dict:
    """Receptive-field size ``rf``, ``jump`` (input pixels between neighbouring units) and ``start`` (the
    centre of unit 0, in input pixels) after a stack of windows, by the recursion of the module docstring.

    ``layers``: a list of ``(kernel, stride, padding)`` or ``(kernel, stride, padding, dilation)`` (ints or
    pairs), or a model with ``target`` (its convs and pools in registration order up to ``target``).
    Returns ``{"rf": (h, w), "jump": (h, w), "start": (h, w)}`` (``start`` may be a half-integer)."""
    if isinstance(layers, nn.Module):
        layers = _window_layers(layers, target)
    rf, jump, start = [1, 1], [1, 1], [0.0, 0.0]
    for spec in layers:
        kernel, stride, padding, dilation = (tuple(spec) + (1,))[:4] if len(spec) == 3 else spec
        kernel, stride, padding, dilation = map(_pair, (kernel, stride, padding, dilation))
        for d in range(2):
            span = dilation[d] * (kernel[d] - 1)
            start[d] += (span / 2 - padding[d]) * jump[d]
            rf[d] += span * jump[d]
            jump[d] *= stride[d]
    return {"rf": tuple(rf), "jump": tuple(jump), "start": tuple(start)}


def unit_box(geometry: dict, i: int, j: int) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` in input pixels of what unit ``(i, j)`` sees (it may reach past the
    image's edges: negative ``top``/``left``, or beyond the size)."""
    (rf_h, rf_w), (jump_h, jump_w), (start_h, start_w) = geometry["rf"], geometry["jump"], geometry["start"]
    top = start_h + i * jump_h - (rf_h - 1) / 2
    left = start_w + j * jump_w - (rf_w - 1) / 2
    return int(round(top)), int(round(left)), rf_h, rf_w


@torch.no_grad()
def max_responses(model, target, x: torch.Tensor, batch_size: int = 200) -> dict:
    """For every image of ``x`` (normalised as the network sees it) and every channel of the ``target``
    layer's output (a submodule or its name; :func:`hebblib.plots.layer_output`): the largest response over
    positions and where it is. Returns ``{"values": (N, C), "rows": (N, C), "cols": (N, C), "size": (H, W)}``."""
    from .plots.receptive_fields import _eval_mode, layer_output

    device = next(model.parameters()).device
    values, where, size = [], [], None
    with _eval_mode(model):
        for start in range(0, len(x), batch_size):
            out = layer_output(model, target, x[start:start + batch_size].to(device)).float()
            size = tuple(out.shape[2:])
            best, index = out.flatten(2).max(dim=2)
            values.append(best.cpu())
            where.append(index.cpu())
    where = torch.cat(where)
    return {"values": torch.cat(values), "rows": where // size[1], "cols": where % size[1], "size": size}


def top_patches(images: torch.Tensor, responses: dict, geometry: dict, channel: int, k: int = 8):
    """The ``k`` images whose strongest response of ``channel`` (from :func:`max_responses`) is largest, each
    cut to the box of the unit where it responded (:func:`unit_box`), zero outside the image.

    ``images``: (N, C, H, W) as they should be shown (e.g. pixels on [0, 1]). Returns ``(patches (k, C, rf_h,
    rf_w), values (k,), image indices (k,))``."""
    values = responses["values"]
    if not 0 <= channel < values.shape[1]:
        raise ValueError(f"channel {channel!r} out of range: the layer has {values.shape[1]} channels (0–"
                         f"{values.shape[1] - 1})")
    k = min(int(k), values.shape[0])
    best, order = values[:, channel].topk(k)
    rf_h, rf_w = geometry["rf"]
    patches = images.new_zeros(k, images.shape[1], rf_h, rf_w)
    height, width = images.shape[2:]
    for n, index in enumerate(order.tolist()):
        row, col = int(responses["rows"][index, channel]), int(responses["cols"][index, channel])
        top, left, _, _ = unit_box(geometry, row, col)
        t0, l0 = max(top, 0), max(left, 0)
        t1, l1 = min(top + rf_h, height), min(left + rf_w, width)
        if t1 > t0 and l1 > l0:
            patches[n, :, t0 - top:t1 - top, l0 - left:l1 - left] = images[index, :, t0:t1, l0:l1]
    return patches, best, order


def centre_unit_fields(model, target, channels, preprocess=None, size: int = 32, in_channels: int = 3,
                       steps: int | None = None, step_size: float | None = None, seed: int = 0) -> torch.Tensor:
    """PGA receptive fields of the centre unit of each of ``channels`` of ``target``, cut to that unit's box.

    The whole ``size``×``size`` image is optimised for the unit at the centre of the target's map
    (:func:`hebblib.plots.pga_receptive_fields` with ``objective='centre'``), so a ``preprocess`` that needs
    the whole image (a fitted ZCA) applies as in training; the result is the part of the image the unit sees
    (:func:`unit_box`; pixels beyond the image's edge grey). Returns (len(channels), C, rf, rf) on [0, 1]."""
    from .plots.receptive_fields import _eval_mode, layer_output, pga_receptive_fields

    device = next(model.parameters()).device
    with _eval_mode(model), torch.no_grad():
        probe = torch.zeros(1, in_channels, size, size, device=device)
        height, width = layer_output(model, target, preprocess(probe) if preprocess else probe).shape[2:]
    images = pga_receptive_fields(model, target=target, channels=list(channels), size=size, steps=steps,
                                  step_size=step_size, preprocess=preprocess, objective="centre",
                                  in_channels=in_channels, seed=seed, progress=False)
    top, left, rf_h, rf_w = unit_box(unit_geometry(model, target), height // 2, width // 2)
    out = images.new_full((images.shape[0], images.shape[1], rf_h, rf_w), 0.5)
    t0, l0, t1, l1 = max(top, 0), max(left, 0), min(top + rf_h, size), min(left + rf_w, size)
    out[:, :, t0 - top:t1 - top, l0 - left:l1 - left] = images[:, :, t0:t1, l0:l1]
    return out


# ----- the change the next batch would make --------------------------------------------------------------
def layer_updates(model, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per competing layer (:func:`competing_layers`), the change one batch ``x`` would make, computed on a
    copy (``model`` is left as it is):

    * a Hebbian layer: its ``ΔW`` from one training-mode forward (competition and rule; before the learning
      rate and any normalisation of the update are applied);
    * a network without Hebbian layers: ``−∂L/∂W`` of the cross-entropy on the labels ``y`` (the direction
      gradient descent moves W).

    Returns CPU tensors of the weights' shape."""
    twin = copy.deepcopy(model)
    layers = competing_layers(twin)
    hebbian = hasattr(twin, "hebbian_layers") and bool(twin.hebbian_layers())
    twin.train()
    if hebbian:
        for layer in twin.hebbian_layers().values():
            layer.delta_w.zero_()
        twin.set_plastic(True)
        with torch.no_grad():
            twin.features(x)
        return {name: layer.delta_w.detach().cpu().clone() for name, layer in layers.items()}
    if y is None:
        raise ValueError("a network without Hebbian layers learns from labels: pass y")
    twin.zero_grad(set_to_none=True)
    F.cross_entropy(twin(x), y).backward()
    return {name: -layer.weight.grad.detach().cpu().clone() for name, layer in layers.items()}


# ----- networks trained on all of CIFAR-10 ------------------------------------------------------------------
def full_data_command(preset: str, seed: int = 0) -> str:
    """The one command that trains ``preset`` on all of CIFAR-10 and leaves its checkpoints under ``runs/``."""
    return f"python -m hebblib reproduce --preset {preset}" + (f" --first-seed {seed}" if seed else "")


def full_data_run(preset: str, seed: int = 0, out=None) -> dict | None:
    """The finished full-data run of ``preset`` (as :func:`full_data_command` makes it) under ``out`` (default
    ``runs/`` or ``$HEBBLIB_RUNS``): the newest ``results.json`` of seed ``seed`` trained on all of CIFAR-10 with
    the preset's current recipe and protocol. None when there is none."""
    from .presets import get_preset, validate_preset, variant_name
    from .results import PROTOCOL_VERSION, default_out, read_json
    from .training import RECIPE_KEYS

    def recipe(preset_dict):  # typed and back: defaults filled in, so equal recipes compare equal
        typed = validate_preset(preset_dict).to_dict()
        return {key: typed.get(key) for key in RECIPE_KEYS}

    wanted = get_preset(preset)
    folder = Path(out or default_out()) / variant_name(wanted)
    found = []
    for path in folder.glob(f"full-*/seed{seed}/results.json"):
        record = read_json(path)
        if not (record and record.get("complete") and not record.get("quick")):
            continue
        data = record.get("data", {})
        if data.get("protocol") != PROTOCOL_VERSION or data.get("source") != "full":
            continue
        try:
            same = recipe(record.get("config", {})) == recipe(wanted)
        except ValueError:  # a recipe of an older version of the library
            same = False
        if not same:
            continue
        if Path(record.get("run_dir", "")) != path.parent:  # copied from elsewhere: read it where it lies
            record = {**record, "run_dir": str(path.parent)}
        found.append((path.stat().st_mtime, record))
    return max(found, key=lambda item: item[0])[1] if found else None


def full_data_network(preset: str, seed: int = 0, out=None):
    """``(network, record)`` of :func:`full_data_run`, the network with its trained weights (a Hebbian
    preset: the Hebbian phase's ``unsupervised.pt``; an end-to-end one: ``supervised.pt``); None when the
    run or its checkpoint is missing."""
    from .presets import build_model
    from .results import load_checkpoint
    from .training import hebbian_network

    record = full_data_run(preset, seed, out)
    if record is None:
        return None
    if record["supervised"]["mode"] == "linear":
        try:
            model = hebbian_network(record)
        except FileNotFoundError:
            return None
    else:
        state = load_checkpoint(Path(record["run_dir"]) / "supervised.pt", record["config_hash"])
        if state is None:
            return None
        model = build_model(record["config"])
        model.load_state_dict(state["state"])
    return model.eval(), record


__all__ = [
    "CompetitionRecorder", "block_names", "centre_unit_fields", "competing_layers", "full_data_command",
    "full_data_network", "full_data_run", "input_normalizer", "layer_probe", "layer_updates", "max_responses",
    "split_features", "top_patches", "unit_box", "unit_geometry",
]
