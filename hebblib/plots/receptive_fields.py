"""Receptive fields: which input pattern drives a unit, for any layer of any model.

Three tools:

* :func:`receptive_field_size`: how many input pixels a unit sees, by the stride arithmetic
  ``rf ← rf + (k − 1)·jump, jump ← jump·s`` over the convs and pools (spec nimmo-thesis §5.1 step 2);
* :func:`pga_receptive_fields`: projected gradient ascent (spec nimmo-thesis §5.1): the input on the
  sphere ``‖x − x0‖ = ε`` that most excites each channel of a target layer;
* :func:`reconstruct_receptive_fields`: Miconi's recursive weighted sum of the previous layer's
  receptive fields (spec miconi-lunelli-manzali §1.10), no optimisation at all.

Unlike the thesis code, the PGA here runs the model's own ``forward`` (so Triangle and pooling come
in their real order), keeps the padding, and can apply the same preprocessing (e.g. ZCA) the network
was trained with. It optimises one image per channel, all channels in one batch.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from ..runtime import quick_or
from .filters import plot_image_grid

OBJECTIVES = ("sum", "centre")
POOL_PLACEMENTS = ("corner", "spread")


# ----- receptive-field size by stride arithmetic ------------------------------------------------
def _kernel_layers(model: nn.Module, upto=None) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(effective kernel, stride) of every conv/pool in registration order, up to ``upto`` (inclusive)."""
    modules = list(model.modules())
    last = len(modules) - 1
    if upto is not None:
        upto = model.get_submodule(upto) if isinstance(upto, str) else upto
        inside = {id(m) for m in upto.modules()}
        found = [i for i, m in enumerate(modules) if id(m) in inside]
        if not found:
            raise ValueError(f"upto={type(upto).__name__} is not a submodule of the model")
        last = max(found)
    pairs = []
    for module in modules[: last + 1]:
        if hasattr(module, "kernel_size") and hasattr(module, "stride"):
            kernel = _pair(module.kernel_size)
            stride = _pair(module.stride if module.stride is not None else module.kernel_size)
            dilation = _pair(getattr(module, "dilation", 1))
            pairs.append((tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation)), stride))
    return pairs


def receptive_field_size(layers, upto=None):
    """Receptive-field size and jump (input pixels between neighbouring units) of a stack of layers.

        rf_0 = 1, jump_0 = 1;   rf_l = rf_{l−1} + (k_l − 1)·jump_{l−1};   jump_l = jump_{l−1}·s_l

    Args:
        layers: a list of ``(kernel, stride)`` pairs, e.g. SoftHebb ``[(5, 1), (4, 2), (3, 1), (4, 2),
            (3, 1)]`` → (26, 4); or an ``nn.Module``, whose convs and pools (modules with
            ``kernel_size`` and ``stride``; dilation counted) are taken in registration order,
            which must be the forward order.
        upto: with a module: the last layer to include (a submodule or its name).
    Returns:
        ``(rf, jump)``, each an int, or an ``(h, w)`` pair where height and width differ. Padding
        does not change the size.
    """
    if isinstance(layers, nn.Module):
        pairs = _kernel_layers(layers, upto)
    else:
        pairs = [(_pair(k), _pair(s)) for k, s in layers]
    rf, jump = [1, 1], [1, 1]
    for kernel, stride in pairs:
        for d in range(2):
            rf[d] += (kernel[d] - 1) * jump[d]
            jump[d] *= stride[d]
    as_int = lambda pair: pair[0] if pair[0] == pair[1] else tuple(pair)  # noqa: E731
    return as_int(rf), as_int(jump)


# ----- projected gradient ascent ----------------------------------------------------------------
class _ReachedTarget(Exception):
    """Raised by the forward hook to stop the forward pass once the target layer has run."""


@contextmanager
def _eval_mode(model: nn.Module):
    """``model.eval()`` for the block (Hebbian layers then do not learn), restoring every module's mode."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def layer_output(model: nn.Module, target, x: torch.Tensor) -> torch.Tensor:
    """The target's output when ``model`` runs on ``x``.

    ``target``: None (the model's output); a submodule or its name (its output, caught by a forward
    hook during the model's real forward, which then stops: later layers are not run); or any other
    callable ``target(x)``.
    """
    if target is None:
        return model(x)
    if isinstance(target, str):
        target = model.get_submodule(target)
    if isinstance(target, nn.Module) and any(m is target for m in model.modules()):
        captured = []

        def hook(module, inputs, output):
            captured.append(output[0] if isinstance(output, (tuple, list)) else output)
            raise _ReachedTarget

        handle = target.register_forward_hook(hook)
        try:
            model(x)
        except _ReachedTarget:
            pass
        finally:
            handle.remove()
        if not captured:
            raise ValueError(f"the target {type(target).__name__} was not called by the model's forward")
        return captured[0]
    if callable(target):
        return target(x)
    raise TypeError(f"target must be None, a submodule, its name, or a callable, got {type(target).__name__}")


def _unit_activity(activation: torch.Tensor, channels: torch.Tensor, objective: str) -> torch.Tensor:
    """One number per image b: Σ over positions of channel c_b (``'sum'``) or its centre unit."""
    picked = activation[torch.arange(len(channels), device=activation.device), channels]
    if picked.dim() == 1:  # (N, C) outputs: one unit per channel already
        return picked
    if objective == "centre":
        return picked[:, picked.shape[1] // 2, picked.shape[2] // 2]
    return picked.flatten(1).sum(1)


def _per_image_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (t.dim() - 1)))


def _model_device(model: nn.Module) -> torch.device:
    tensor = next(iter(list(model.parameters()) + list(model.buffers())), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def pga_receptive_fields(model: nn.Module, target=None, channels=None, size=32, steps: int | None = None,
                         eps: float = 1.0, step_size: float | None = None, value_range=(0.0, 1.0),
                         preprocess=None, objective: str = "sum", in_channels: int = 3, seed: int = 0,
                         progress: bool = True) -> torch.Tensor:
    """Activation-maximising input images by projected gradient ascent (spec nimmo-thesis §5.1).

    For each channel c, starting at ``x = x0 + 1e-5·ε·r̂`` (x0 = 0, r̂ a random unit image)::

        a(x)  = Σ_positions target(preprocess(x))[c]        (or the centre unit: objective='centre')
        x ← x + η · ∇a / ‖∇a‖                              (η = 1e-3·ε by default)
        x ← x0 + ε · (x − x0) / ‖x − x0‖                    (back onto the L2 sphere of radius ε)
        x ← clamp(x, *value_range)

    All channels are optimised together, one image per channel in one batch; images do not interact
    because the model runs in eval mode (BatchNorm uses its running statistics).

    Args:
        model: any ``nn.Module``; it runs its real ``forward`` in eval mode (its modes are restored).
        target: the layer to read: a submodule (or its name), a callable ``x -> activations``, or None
            for the model's output. See :func:`layer_output`.
        channels: which channels (default: the first 25).
        size: input height = width (int), ``(h, w)``, or ``'rf'`` for the target's receptive-field
            size (:func:`receptive_field_size`). Default: the whole 32×32 image.
        steps: default 500 (the thesis), 50 in quick mode.
        value_range: pixel range to clamp to, or None (no clamp).
        preprocess: applied to x before the model, e.g. the fitted ``ZCA`` the model was trained on.
        objective: ``'sum'`` over all positions (the thesis) or ``'centre'`` (one unit).
    Returns:
        Images (len(channels), in_channels, H, W) on the CPU.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; valid choices: {', '.join(map(repr, OBJECTIVES))}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    steps = quick_or(500, 50) if steps is None else int(steps)
    step_size = 1e-3 * eps if step_size is None else float(step_size)
    if size == "rf":
        if target is not None and not isinstance(target, (nn.Module, str)):
            raise ValueError("size='rf' needs target to be a submodule (or None) to know the layers")
        size = receptive_field_size(model, upto=target)[0]
    height, width = _pair(size)
    device = _model_device(model)
    preprocess = preprocess if preprocess is not None else (lambda t: t)
    run = lambda t: layer_output(model, target, preprocess(t))  # noqa: E731

    with _eval_mode(model):
        with torch.no_grad():
            probe = run(torch.zeros(1, in_channels, height, width, device=device))
        available = probe.shape[1]
        channels = torch.arange(min(25, available)) if channels is None else torch.as_tensor(channels).flatten()
        if channels.numel() == 0 or int(channels.min()) < 0 or int(channels.max()) >= available:
            raise ValueError(f"channels must be indices in [0, {available}), got {channels.tolist()}")
        channels = channels.long().to(device)

        generator = torch.Generator().manual_seed(seed)
        x0 = torch.zeros(len(channels), in_channels, height, width, device=device)
        direction = torch.randn(x0.shape, generator=generator).to(device)
        x = x0 + 1e-5 * eps * direction / _per_image_norm(direction)
        iterator = range(steps)
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, desc="PGA receptive fields", leave=False)
        for _ in iterator:
            x.requires_grad_(True)
            activity = _unit_activity(run(x), channels, objective)
            (grad,) = torch.autograd.grad(activity.sum(), x)  # images are independent: one grad each
            with torch.no_grad():
                x = x + step_size * grad / _per_image_norm(grad)
                x = x0 + eps * (x - x0) / _per_image_norm(x - x0)
                if value_range is not None:
                    x = x.clamp(*value_range)
    return x.detach().cpu()


def plot_receptive_fields(images, n: int | None = None, ncols: int | None = None, title: str | None = None,
                          mode: str = "minmax", labels=None, fig=None):
    """A grid of receptive-field images (C, 3, H, W), each min–max normalised for display."""
    return plot_image_grid(images, n=n, ncols=ncols, title=title or "Receptive fields", mode=mode,
                           labels=labels, fig=fig)


# ----- Miconi's reconstruction --------------------------------------------------------------------
def _per_layer(value, count: int, name: str) -> list[int]:
    """An int for every layer, or a list with one entry per layer (the last layer's may be left out)."""
    values = [value] * count if isinstance(value, int) else list(value)
    values += [1] * (count - len(values)) if len(values) == count - 1 else []
    if len(values) < count or any(not isinstance(v, int) or v < 1 for v in values[:count]):
        raise ValueError(f"{name} must be a positive int or a list of {count - 1} or {count} positive ints, "
                         f"got {value!r}")
    return values[:count]


def _dense(weight: torch.Tensor, in_total: int) -> torch.Tensor:
    """A grouped/depthwise weight (O, I/g, k, k) as the equivalent dense (O, I, k, k), zeros off-group."""
    out, per_group = weight.shape[:2]
    if per_group == in_total:
        return weight
    groups = in_total // per_group
    if groups * per_group != in_total or out % groups:
        raise ValueError(f"a weight of shape {tuple(weight.shape)} does not follow a layer with "
                         f"{in_total} channels")
    first = (torch.arange(out) // (out // groups)) * per_group  # first input channel of each unit's group
    index = (first[:, None] + torch.arange(per_group))[:, :, None, None].expand_as(weight)
    return weight.new_zeros(out, in_total, *weight.shape[2:]).scatter_(1, index, weight)


def reconstruct_receptive_fields(weights, strides=1, pool_sizes=1, pool_strides=None,
                                 pool_placement: str = "corner") -> list[torch.Tensor]:
    """Receptive fields of every layer as weighted sums of the previous layer's (Miconi et al.).

    With ``RF_1[o] = W_1[o]`` (C0 × S_1 × S_1) and, for l ≥ 2 (conv stride ``s``, pool size ``P`` and
    pool stride ``q`` of layer l−1)::

        grid_l = s_{l−1} · step_{l−1}              pixels between layer l−1's conv outputs (step_1 = 1)
        step_l = q_{l−1} · grid_l                  pixels between layer l's inputs
        Q[c]   = RF_{l−1}[c] placed in its pool window (below)
        RF_l[o] = Σ_{c,i,j} W_l[o,c,i,j] · Q[c] shifted by (i·step_l, j·step_l)
                = conv_transpose2d(W_l, Q, stride=step_l)
        size_l = step_l·(S_l − 1) + size_{l−1} + (P_{l−1} − 1)·grid_l

    Pooling makes this approximate: ``pool_placement='corner'`` puts RF_{l−1} at the corner of the
    pool window (Miconi's code; sizes 5, 10, 20 for his 5×5/3×3/3×3 layers with 2×2 pools);
    ``'spread'`` averages it over the P×P window positions, which is exact for a linear network
    with average pooling (then RF_l[o] is the gradient of unit o with respect to the input).

    Args:
        weights: per layer a weight tensor (O, I, k, k) or (O, I), or a layer with ``.weight``;
            grouped/depthwise weights are expanded to dense ones.
        strides, pool_sizes, pool_strides: an int for every layer or a list (entry l: after layer l);
            ``pool_strides`` defaults to ``pool_sizes``.
    Returns:
        A list of unnormalised RFs, one (O_l, C0, size_l, size_l) CPU tensor per layer (use
        :func:`plot_receptive_fields` to show them min–max normalised).
    """
    if pool_placement not in POOL_PLACEMENTS:
        raise ValueError(f"unknown pool_placement {pool_placement!r}; valid choices: "
                         f"{', '.join(map(repr, POOL_PLACEMENTS))}")
    weights = [torch.as_tensor(getattr(w, "weight", w)).detach().cpu().double() for w in weights]
    weights = [w[:, :, None, None] if w.dim() == 2 else w for w in weights]
    if not weights or any(w.dim() != 4 for w in weights):
        raise ValueError("weights must be a non-empty list of (O, I, k, k) or (O, I) tensors")
    count = len(weights)
    strides = _per_layer(strides, count, "strides")
    pool_sizes = _per_layer(pool_sizes, count, "pool_sizes")
    pool_strides = pool_sizes if pool_strides is None else _per_layer(pool_strides, count, "pool_strides")
    fields, step = [weights[0]], 1
    for layer in range(1, count):
        grid = strides[layer - 1] * step
        step = pool_strides[layer - 1] * grid
        previous, pool = fields[-1], pool_sizes[layer - 1]
        margin = (pool - 1) * grid
        pooled = previous.new_zeros(*previous.shape[:2], previous.shape[2] + margin, previous.shape[3] + margin)
        offsets = [(a, b) for a in range(pool) for b in range(pool)] if pool_placement == "spread" else [(0, 0)]
        height, width = previous.shape[2:]
        for a, b in offsets:
            pooled[:, :, a * grid: a * grid + height, b * grid: b * grid + width] += previous
        pooled /= len(offsets)
        dense = _dense(weights[layer], previous.shape[0])
        fields.append(F.conv_transpose2d(dense, pooled, stride=step))
    return [f.float() for f in fields]
