"""Looking at the weights directly: filter grids and the surround kernel (spec nimmo-thesis §5.2).

What each layer kind shows:

* RGB first-layer filters (O, 3, k, k): colour images, each filter normalised on its own, either
  min–max, ``img = (w − min w) / (max w − min w)``, or symmetric around grey (Miconi §1.10),
  ``img = 0.5 + 0.5 · w / max|w|``, so that a zero weight is grey in every filter;
* deeper layers (O, I, k, k): the mean over input channels, a k×k map on a diverging colormap
  centred at 0 (it only reveals centre–surround or repeated patterns);
* 1×1 and linear layers (O, I): a bar chart of each filter's mean weight and an O×I heatmap.
"""
from __future__ import annotations

import torch

from ..surround import dog_kernel
from . import style

IMAGE_MODES = ("minmax", "symmetric")


def _weight4d(weight) -> torch.Tensor:
    w = style.to_cpu(getattr(weight, "weight", weight)).float()
    if w.dim() == 2:
        w = w[:, :, None, None]
    if w.dim() != 4:
        raise ValueError(f"expected weights of shape (O, I, k, k) or (O, I), got {tuple(w.shape)}")
    return w


def _select(count: int, n: int | None, indices) -> list[int]:
    if indices is not None:
        chosen = [int(i) for i in indices]
        bad = [i for i in chosen if not 0 <= i < count]
        if bad:
            raise ValueError(f"filter indices {bad} out of range for {count} filters")
        return chosen
    if n is not None and (not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive int, got {n!r}")
    return list(range(min(count, n or count)))


def normalize_images(images: torch.Tensor, mode: str = "minmax") -> torch.Tensor:
    """Map each image (N, C, H, W) to [0, 1] on its own: ``'minmax'`` or ``'symmetric'`` (0 → 0.5).

    A constant image becomes uniform grey in both modes (nothing divides by zero).
    """
    if mode not in IMAGE_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid choices: {', '.join(map(repr, IMAGE_MODES))}")
    x = style.to_cpu(images).float()
    flat = x.flatten(1)
    if mode == "symmetric":
        peak = flat.abs().amax(1)
        peak = torch.where(peak > 0, peak, torch.ones_like(peak))
        out = 0.5 + 0.5 * flat / peak[:, None]
    else:
        low, high = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
        span = high - low
        out = torch.where(span > 0, (flat - low) / torch.where(span > 0, span, torch.ones_like(span)),
                          torch.full_like(flat, 0.5))
    return out.nan_to_num(0.5).clamp(0, 1).view_as(x)


def plot_image_grid(images, n: int | None = None, ncols: int | None = None, title: str | None = None,
                    mode: str = "minmax", labels=None, fig=None):
    """A grid of images (N, 3, H, W) in colour or (N, 1, H, W) in grey, each normalised on its own
    (see :func:`normalize_images`); ``labels`` titles the cells (default: the image index)."""
    images = style.to_cpu(images)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images (N, 3, H, W) or (N, 1, H, W), got {tuple(images.shape)}")
    chosen = _select(images.shape[0], n, None)
    shown = normalize_images(images[chosen], mode)
    labels = chosen if labels is None else list(labels)
    fig, axes = style.image_grid(len(chosen), ncols, fig=fig, title=title)
    for ax, img, label in zip(axes, shown, labels):
        if img.shape[0] == 1:
            ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(img.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(str(label), fontsize=7, pad=2)
    return fig


def plot_filters(weight, n: int = 25, ncols: int | None = None, title: str | None = None,
                 mode: str = "minmax", rgb: bool | None = None, indices=None, fig=None):
    """Show a layer's filters; the kind of plot follows the weight's shape (see the module docstring).

    Args:
        weight: a weight tensor (O, I, k, k) or (O, I), on any device, or a layer with ``.weight``.
        n: how many filters (the first ``n``; fewer if the layer has fewer). ``indices`` picks others,
            e.g. ``list(range(20)) + list(range(O - 5, O))`` as the thesis code did.
        mode: ``'minmax'`` or ``'symmetric'`` normalisation of RGB filters.
        rgb: show (O, 3, k, k) as colour images; default: when I == 3 and k > 1.
        fig: an existing figure to draw into (cleared first).
    """
    w = _weight4d(weight)
    chosen = _select(w.shape[0], n, indices)
    w = w[chosen]
    if w.shape[-2:] == (1, 1):
        return _plot_pointwise(w, chosen, title, fig)
    if rgb is None:
        rgb = w.shape[1] == 3
    if rgb:
        if w.shape[1] != 3:
            raise ValueError(f"rgb=True needs 3 input channels, the weights have {w.shape[1]}")
        title = _range_title(chosen) if title is None else title
        return plot_image_grid(w, ncols=ncols, title=title, mode=mode, labels=chosen, fig=fig)
    return _plot_channel_means(w, chosen, ncols, title, fig)


def _plot_channel_means(w, chosen, ncols, title, fig):
    """k×k mean over input channels per filter, each on its own scale centred at 0."""
    maps = w.mean(dim=1)
    if title is None:
        what = "one input channel each" if w.shape[1] == 1 else f"mean over {w.shape[1]} input channels"
        title = f"{_range_title(chosen)}: {what}"
    fig, axes = style.image_grid(len(chosen), ncols, fig=fig, title=title)
    for ax, m, label in zip(axes, maps, chosen):
        limit = style.symmetric_limit(m)
        ax.imshow(m.numpy(), cmap=style.DIVERGING_CMAP, vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(str(label), fontsize=7, pad=2)
    return fig


def _range_title(chosen) -> str:
    if chosen == list(range(len(chosen))):
        return "Filter 0" if len(chosen) == 1 else f"Filters 0–{chosen[-1]}"
    return "Filters " + ", ".join(map(str, chosen[:8])) + (", …" if len(chosen) > 8 else "")


def _plot_pointwise(w, chosen, title, fig):
    """1×1 layers: bar chart of mean weight per filter (green > 0, red < 0) and the O×I heatmap."""
    w2 = w[:, :, 0, 0]
    fig, (bars, heat) = style.panels(2, fig=fig, width=2 * style.PANEL[0] + 1)
    means = w2.mean(dim=1)
    colors = [style.LTP_COLOR if m > 0 else style.LTD_COLOR for m in means.tolist()]
    bars.bar(range(len(chosen)), means.numpy(), color=colors)
    bars.axhline(0, color="black", linewidth=0.6)
    bars.set(xlabel="filter", ylabel="mean weight", title="mean weight per filter")
    if len(chosen) <= 30:
        bars.set_xticks(range(len(chosen)), [str(c) for c in chosen], fontsize=7)
    else:
        style.integer_ticks(bars)
    limit = style.symmetric_limit(w2)
    image = heat.imshow(w2.numpy(), aspect="auto", cmap=style.DIVERGING_CMAP, vmin=-limit, vmax=limit,
                        interpolation="nearest")
    heat.set(xlabel="input channel", ylabel="filter (row)", title="weights (out × in)")
    style.integer_ticks(heat, x=True, y=True)
    fig.colorbar(image, ax=heat)
    fig.suptitle(title or f"1×1 {_range_title(chosen).lower()}")
    return fig


def _kernel2d(kernel) -> torch.Tensor:
    if kernel is None:
        kernel = dog_kernel()
    kernel = getattr(kernel, "surround", kernel)  # a layer -> its SurroundModulation
    if kernel is None:
        raise ValueError("this layer has no surround kernel (surround=None)")
    kernel = style.to_cpu(getattr(kernel, "kernel", kernel)).float()
    while kernel.dim() > 2 and kernel.shape[0] == 1:  # (1, 1, k, k) buffer -> (k, k)
        kernel = kernel[0]
    if kernel.dim() != 2:
        raise ValueError(f"expected one 2-D kernel, got shape {tuple(kernel.shape)}")
    return kernel


def plot_kernel(kernel=None, title: str | None = None, fig=None):
    """Heatmap and centre-row profile of a surround kernel (spec nimmo-thesis §1.16, ``dog_kernel``).

    ``kernel``: a (k, k) tensor, a ``SurroundModulation``, a layer built with ``surround=...``, or None
    for the default DoG kernel. The title gives the kernel sum ``Σ K``: a negative sum means the
    surround inhibits more than the centre excites (uniform input is suppressed).
    """
    k = _kernel2d(kernel)
    fig, (heat, profile) = style.panels(2, fig=fig, width=2 * style.PANEL[0])
    limit = style.symmetric_limit(k)
    image = heat.imshow(k.numpy(), cmap=style.DIVERGING_CMAP, vmin=-limit, vmax=limit, interpolation="nearest")
    if max(k.shape) <= 9:
        for (i, j), v in zip(torch.cartesian_prod(torch.arange(k.shape[0]), torch.arange(k.shape[1])).tolist(),
                             k.flatten().tolist()):
            heat.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                      color="white" if abs(v) > 0.6 * limit else "black")  # readable on the dark ends
    heat.set(title="kernel $K$", xticks=[], yticks=[])
    fig.colorbar(image, ax=heat)
    row = k.shape[0] // 2
    offsets = torch.arange(k.shape[1]) - k.shape[1] // 2
    profile.plot(offsets.numpy(), k[row].numpy(), marker="o")
    profile.axhline(0, color="black", linewidth=0.6)
    profile.set(xlabel="offset from centre", ylabel="$K$", title="centre row of $K$")
    style.integer_ticks(profile)
    fig.suptitle(title or f"Surround kernel {k.shape[0]}×{k.shape[1]}: $\\Sigma K$ = {float(k.sum()):.3f}, "
                          f"centre = {float(k[row, k.shape[1] // 2]):.2f}")
    return fig
