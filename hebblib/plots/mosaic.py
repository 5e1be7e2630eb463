"""Many small filters as one image: one ``imshow`` instead of one axes per filter (64 filters draw in
milliseconds). Shared by the chapters that show learned filters (3, 7, 10) and depthwise kernels (11, 13)."""
from __future__ import annotations

import math

import torch

from .filters import normalize_images


def filter_mosaic(weights: torch.Tensor, ncols: int = 8, gap: int = 1) -> torch.Tensor:
    """Tile filters (O, 3, k, k) into one RGB image (H, W, 3), each filter normalised on its own with
    grey at zero (:func:`hebblib.plots.normalize_images`, mode 'symmetric'), separated by white lines."""
    tiles = normalize_images(weights, mode="symmetric")
    count, channels, k, _ = tiles.shape
    rows = math.ceil(count / ncols)
    mosaic = torch.ones(channels, rows * (k + gap) + gap, ncols * (k + gap) + gap)
    for index in range(count):
        r, c = divmod(index, ncols)
        top, left = gap + r * (k + gap), gap + c * (k + gap)
        mosaic[:, top:top + k, left:left + k] = tiles[index]
    return mosaic.permute(1, 2, 0)


def kernel_mosaic(kernels: torch.Tensor, ncols: int = 8) -> torch.Tensor:
    """Tile (n, k, k) single-channel kernels, each divided by its largest |tap|, with NaN-free gaps at 0."""
    n, k, _ = kernels.shape
    rows = math.ceil(n / ncols)
    scaled = kernels / kernels.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, 1, 1)
    mosaic = torch.zeros(rows * (k + 1) + 1, ncols * (k + 1) + 1)
    for i in range(n):
        r, c = divmod(i, ncols)
        mosaic[1 + r * (k + 1):1 + r * (k + 1) + k, 1 + c * (k + 1):1 + c * (k + 1) + k] = scaled[i]
    return mosaic.nan_to_num(0.0)


__all__ = ["filter_mosaic", "kernel_mosaic"]
