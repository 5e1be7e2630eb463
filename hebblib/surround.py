"""Lateral inhibition as a fixed difference-of-Gaussians ("Mexican hat") surround kernel.

Seed 000 §3.3.9 (after Hasani et al. 2019):

    K(x, y) = ( G_e(x, y) / (2π σ_e²) − G_i(x, y) / (2π σ_i²) ) / K_centre,
    G_s(x, y) = exp(−(x² + y²) / (2σ²)),

normalised so that the centre tap is 1. It is applied to every feature map separately (a depthwise
convolution with zero padding), so neighbouring positions of the same channel excite (close) and
inhibit (further out) each other.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def dog_kernel(size: int = 5, sigma_e: float = 1.2, sigma_i: float = 1.4) -> torch.Tensor:
    """The (size × size) difference-of-Gaussians kernel with centre value 1."""
    check_surround(size, sigma_e, sigma_i)
    c = size // 2
    offsets = torch.arange(-c, c + 1, dtype=torch.float64)
    r2 = offsets[:, None] ** 2 + offsets[None, :] ** 2
    centre = torch.exp(-r2 / (2 * sigma_e**2)) / (2 * math.pi * sigma_e**2)
    surround = torch.exp(-r2 / (2 * sigma_i**2)) / (2 * math.pi * sigma_i**2)
    kernel = centre - surround
    return (kernel / kernel[c, c]).float()


def check_surround(size, sigma_e, sigma_i) -> None:
    if not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"surround size must be an odd int >= 1, got {size!r}")
    if not (sigma_e > 0):
        raise ValueError(f"surround sigma_e must be > 0, got {sigma_e!r}")
    if not (sigma_i > sigma_e):
        raise ValueError(
            f"surround sigma_i must be larger than sigma_e (inhibition reaches further than excitation), "
            f"got sigma_e={sigma_e!r}, sigma_i={sigma_i!r}"
        )


class SurroundModulation(nn.Module):
    """Depthwise convolution of each feature map with the fixed DoG kernel (same spatial size out)."""

    def __init__(self, size: int = 5, sigma_e: float = 1.2, sigma_i: float = 1.4):
        super().__init__()
        self.size, self.sigma_e, self.sigma_i = size, sigma_e, sigma_i
        self.register_buffer("kernel", dog_kernel(size, sigma_e, sigma_i)[None, None])

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        channels = y.shape[1]
        weight = self.kernel.to(y.dtype).expand(channels, 1, self.size, self.size)
        return F.conv2d(y, weight, padding=self.size // 2, groups=channels)

    def extra_repr(self) -> str:
        return f"size={self.size}, sigma_e={self.sigma_e}, sigma_i={self.sigma_i}"
