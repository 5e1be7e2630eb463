"""Numbers that tell how a Hebbian layer is learning: competition, weights, updates, radii.

No plotting here (``hebblib.plots`` draws these). Every function takes a tensor on any device, or a
Hebbian layer, and returns plain Python floats or CPU tensors.

Competition metrics (spec nimmo-thesis §5.7; suggested there and labelled *ours*: neither the thesis nor
its code computes them). With ``n_o`` the number of sites (image, position) won by unit ``o`` and
``C`` units:

    p_o = n_o / Σ_o' n_o'                    win rate
    H   = −Σ_o p_o log p_o / log C           usage entropy: 1 = all units win equally, 0 = one unit wins all
    N_eff = exp(−Σ_o p_o log p_o) = C^H      effective number of units
    dead fraction = #{o : p_o = 0} / C
"""
from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F


def _cpu(x) -> torch.Tensor:
    x = torch.as_tensor(x).detach()
    return (x if x.is_floating_point() else x.double()).cpu()


def _counts(counts) -> torch.Tensor:
    """Win counts from a tensor of counts (C,) or from a layer's ``win_counts`` buffer."""
    counts = getattr(counts, "win_counts", counts)
    counts = _cpu(counts).double().flatten()
    if counts.numel() == 0:
        raise ValueError("win counts are empty")
    if bool((counts < 0).any()) or not bool(torch.isfinite(counts).all()):
        raise ValueError("win counts must be finite and non-negative")
    return counts


def winner_counts(u: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """How many sites each unit wins: ``n_o = #{sites : argmax_dim u = o}``, from activations ``u``
    of shape (N, C, H, W) or (N, C). Useful where a layer does not track ``win_counts`` itself
    (grouped and depthwise layers, or any ``nn.Module``)."""
    u = u.detach()
    return torch.bincount(u.argmax(dim=dim).flatten().cpu(), minlength=u.shape[dim]).double()


def win_rates(counts) -> torch.Tensor:
    """``p_o = n_o / Σ n``; all zeros when nothing has been counted yet (no division by zero)."""
    counts = _counts(counts)
    total = counts.sum()
    return counts / total if total > 0 else torch.zeros_like(counts)


def _entropy_nats(p: torch.Tensor) -> float:
    p = p[p > 0]
    return float(-(p * p.log()).sum()) if p.numel() else 0.0


def usage_entropy(counts) -> float:
    """``H = −Σ p_o log p_o / log C`` in [0, 1]; 0 for a single unit or when nothing was counted."""
    p = win_rates(counts)
    return _entropy_nats(p) / math.log(p.numel()) if p.numel() > 1 else 0.0


def effective_units(counts) -> float:
    """``exp(−Σ p_o log p_o)`` (= C^H): C when usage is uniform, 1 with one winner, 0 with no counts."""
    p = win_rates(counts)
    return math.exp(_entropy_nats(p)) if bool((p > 0).any()) else 0.0


def dead_fraction(counts) -> float:
    """Fraction of units that never won (``p_o = 0``)."""
    return float((_counts(counts) == 0).double().mean())


def competition_summary(counts) -> dict:
    """All competition metrics at once: ``units``, ``total_wins``, ``entropy``, ``effective_units``,
    ``dead_fraction`` and the largest win rate ``max_rate``."""
    c = _counts(counts)
    return {"units": c.numel(), "total_wins": float(c.sum()), "entropy": usage_entropy(c),
            "effective_units": effective_units(c), "dead_fraction": dead_fraction(c),
            "max_rate": float(win_rates(c).max())}


def activation_sparsity(y: torch.Tensor, threshold: float = 0.0) -> float:
    """Fraction of activations with ``|y| <= threshold`` (zeros after Triangle/ReLU by default)."""
    y = y.detach()
    if y.numel() == 0:
        raise ValueError("activation_sparsity got an empty tensor")
    return float((y.abs() <= threshold).double().mean())


def weight_statistics(w) -> dict:
    """Summary of all weights (spec nimmo-thesis §5.3): ``count``, ``mean``, ``std`` (population,
    ddof = 0), ``min``, ``max``, ``median``, ``q25``, ``q75``, ``frac_positive``, ``frac_negative``.

    Takes a tensor (W or ΔW) or a layer (its ``weight``).
    """
    w = _cpu(getattr(w, "weight", w)).double().flatten().numpy()
    if w.size == 0:
        raise ValueError("weight_statistics got an empty tensor")
    q25, median, q75 = np.percentile(w, [25, 50, 75])
    return {"count": int(w.size), "mean": float(w.mean()), "std": float(w.std()), "min": float(w.min()),
            "max": float(w.max()), "median": float(median), "q25": float(q25), "q75": float(q75),
            "frac_positive": float((w > 0).mean()), "frac_negative": float((w < 0).mean())}


class LtpLtd(NamedTuple):
    """Per-filter potentiation/depression (spec nimmo-thesis §5.4).

    ``per_filter``: (O,) ``Σ ΔW_o`` over inputs and taps; > 0 is net LTP, < 0 net LTD.
    ``maps``: (O, k, k) ``mean over input channels of ΔW_o`` (1×1 maps for linear and 1×1 layers).
    """

    per_filter: torch.Tensor
    maps: torch.Tensor


def ltp_ltd(delta_w) -> LtpLtd:
    """Split an update ΔW (a tensor, or a layer's ``delta_w`` before it is applied) into per-filter
    sums and per-tap maps; see :class:`LtpLtd`."""
    dw = _cpu(getattr(delta_w, "delta_w", delta_w))
    if dw.dim() == 2:  # linear layer (O, I) -> (O, I, 1, 1)
        dw = dw[:, :, None, None]
    if dw.dim() != 4:
        raise ValueError(f"ltp_ltd expects ΔW of shape (O, I, k, k) or (O, I), got {tuple(dw.shape)}")
    return LtpLtd(per_filter=dw.sum(dim=(1, 2, 3)), maps=dw.mean(dim=1))


def radius_summary(layer, tol: float = 0.1) -> dict:
    """How far the units are from SoftHebb's fixed point ``‖W_o‖ = 1`` (Journé et al. 2023).

    Takes a layer (its ``radius()``), a 1-D tensor of radii, or a weight tensor (O, ...) whose filter
    norms are taken. Returns ``units``, ``mean_radius``, ``mean_deviation`` and ``std_deviation`` of
    ``|‖W_o‖ − 1|``, ``within_tol`` (units with ``|‖W_o‖ − 1| < tol``) and ``fraction_within``.
    """
    radii = radii_of(layer)
    dev = (radii - 1).abs()
    within = int((dev < tol).sum())
    return {"units": radii.numel(), "mean_radius": float(radii.mean()), "mean_deviation": float(dev.mean()),
            "std_deviation": float(dev.std(unbiased=False)), "within_tol": within,
            "fraction_within": within / radii.numel(), "tol": tol}


def radii_of(layer) -> torch.Tensor:
    """Radii ``‖W_o‖`` (1-D, CPU) from a layer with ``radius()``, a 1-D tensor, or a weight tensor."""
    if hasattr(layer, "radius"):
        radii = layer.radius()
    else:
        radii = getattr(layer, "weight", layer)
        radii = _cpu(radii)
        if radii.dim() > 1:
            radii = radii.reshape(radii.shape[0], -1).norm(dim=1)
    radii = _cpu(radii).double().flatten()
    if radii.numel() == 0:
        raise ValueError("no radii to summarise")
    return radii


def pattern_correlation(images: torch.Tensor, patterns: torch.Tensor) -> torch.Tensor:
    """Pearson correlation, item by item, between two stacks of equal shape (e.g. PGA receptive fields
    and the filters that made them): the cosine of the mean-centred, flattened items. 0 for a constant item."""
    a, b = _cpu(images).flatten(1), _cpu(patterns).flatten(1)
    return F.cosine_similarity(a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True), dim=1)


# ----- the competition at the end of the Hebbian phase, as every full run records it -----------------------
DIAGNOSTIC_IMAGES = 1000  # the fixed evaluation batch: the first images of the training split
# the activation a block applies to each of its Hebbian layers' outputs (block attribute -> activation attribute)
ACTIVATION_AFTER = {"conv": "act", "linear": "act", "pointwise": "act", "expand": "act1", "depthwise": "act2",
                    "project": "act", "shortcut": "act"}


def _activations_after(model) -> dict:
    """``{layer name: the activation module applied to that layer's output}`` where the block says which
    (:data:`ACTIVATION_AFTER`): the residual block's ``project`` and ``shortcut`` share the activation of their
    sum; the depthwise-separable block's depthwise conv has none."""
    layers = {id(m): name for name, m in model.hebbian_layers().items()}
    out = {}
    for block in model.modules():
        for layer_attr, act_attr in ACTIVATION_AFTER.items():
            layer, act = getattr(block, layer_attr, None), getattr(block, act_attr, None)
            if isinstance(layer, torch.nn.Module) and id(layer) in layers and isinstance(act, torch.nn.Module):
                out[layers[id(layer)]] = act
    return out


@torch.no_grad()
def competition_diagnostics(model, data, images: int = DIAGNOSTIC_IMAGES, batch_size: int = 100) -> dict:
    """The competition and the weight radii of every Hebbian layer of a trained network (spec nimmo-thesis
    §5.7, labelled *ours*), as recorded at the end of a run's Hebbian phase.

    ``data``: a ``DeviceDataset`` (its first ``images`` images, unaugmented, labels unused) or an image tensor
    (N, C, H, W) already normalised. The network runs in eval mode (as for the classifier's features: the
    BatchNorms' running statistics, no Hebbian update, fp32). At every site (image, position) of a layer's
    response ``u`` the winner is ``argmax_o u`` over the output channels (what the layers' own ``win_counts``
    count while training; for a layer that competes over space, the depthwise ones, it is the strongest
    channel, not that layer's own competition). Per layer:

    * ``win_entropy``: ``H = −Σ p_o log p_o / log C`` of the win rates (:func:`usage_entropy`), 1 when every
      unit wins equally often; ``effective_units`` ``= C^H``; ``max_win_rate``;
    * ``dead_never_win``: units that win no site; ``never_active``: units whose output after the block's
      activation (Triangle, ReLU, ...) is never > 0 (None where no activation follows the layer);
    * ``radius_mean``, ``radius_std`` (population), ``radius_min``, ``radius_max``: of ``‖W_o‖_p``,
      ``p = radius_p`` (the layer's Lebesgue p; :meth:`radius`).

    Returns ``{"evaluation": {...how it was measured, seconds}, "layers": {name: {...}}}``. The model's mode is
    restored; nothing in it changes.
    """
    layers = model.hebbian_layers()
    acts = _activations_after(model)
    if not (isinstance(images, int) and images >= 1):
        raise ValueError(f"images must be an int >= 1, got {images!r}")
    n = min(images, len(data))
    if isinstance(data, torch.Tensor):
        split, batch = "given images", (lambda start, stop: data[start:stop])
    else:  # a DeviceDataset: normalised batch by batch, never flipped
        split, batch = "train", (lambda start, stop: data.get(slice(start, stop))[0])
    device = next(model.parameters()).device
    wins = {name: torch.zeros(layer.win_counts.numel(), dtype=torch.float64) for name, layer in layers.items()}
    active = {name: torch.zeros_like(w, dtype=torch.bool) for name, w in wins.items() if name in acts}
    hooks = []

    def count_wins(name):
        def hook(module, inputs, u):
            wins[name] += winner_counts(u)
        return hook

    def mark_active(name):
        def hook(module, inputs, y):
            dims = [0] + list(range(2, y.dim()))
            active[name] |= (y > 0).any(dim=tuple(dims)).cpu() if y.dim() > 1 else (y > 0).cpu()
        return hook

    for name, layer in layers.items():
        hooks.append(layer.register_forward_hook(count_wins(name)))
    for name, act in acts.items():
        hooks.append(act.register_forward_hook(mark_active(name)))
    was_training, started = model.training, time.perf_counter()
    model.eval()
    try:
        for start in range(0, n, batch_size):
            model.features(batch(start, min(start + batch_size, n)).to(device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    out = {}
    for name, layer in layers.items():
        counts = wins[name]
        summary = competition_summary(counts)
        radii = radii_of(layer)
        out[name] = {"units": summary["units"], "sites": int(counts.sum()), "win_entropy": summary["entropy"],
                     "effective_units": summary["effective_units"], "max_win_rate": summary["max_rate"],
                     "dead_never_win": int((counts == 0).sum()),
                     "never_active": int((~active[name]).sum()) if name in active else None,
                     "radius_p": float(getattr(layer, "lebesgue_p", 2.0)), "radius_mean": float(radii.mean()),
                     "radius_std": float(radii.std(unbiased=False)), "radius_min": float(radii.min()),
                     "radius_max": float(radii.max())}
    return {"evaluation": {"images": n, "split": split, "which": f"the first {n} images, unaugmented",
                           "mode": "eval (BatchNorm running statistics), fp32",
                           "winner": "argmax over output channels of the layer's response u, per image and position",
                           "active": "output of the activation after the layer > 0 somewhere",
                           "seconds": time.perf_counter() - started},
            "layers": out}
