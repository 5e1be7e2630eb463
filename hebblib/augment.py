"""Batch augmentations that run on the data's device, without a DataLoader.

    random_crop(x, padding=4)    reflect-pad by ``padding`` on every side, then cut a random window of the
                                 original size from each image (Manzali's CIFAR-10 protocol: pad 4 + crop 32)
    random_flip(x)               mirror each image left-right with probability 1/2

Every image gets its own offsets / flip, drawn from ``generator`` (reproducible when seeded).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop(x: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """``out[n] = pad(x[n])[:, i_n : i_n + H, j_n : j_n + W]`` with ``i_n, j_n`` uniform on ``0 … 2·padding``."""
    if x.dim() != 4:
        raise ValueError(f"random_crop expects images shaped (N, C, H, W), got {tuple(x.shape)}")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be an int >= 0, got {padding!r}")
    if padding == 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, [padding] * 4, mode="reflect")
    rng_device = generator.device if generator is not None else x.device
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=rng_device).to(x.device)
    rows = (offsets[0, :, None] + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (offsets[1, :, None] + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    samples = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channels = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[samples, channels, rows, cols]


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image mirrored left-right with probability 1/2."""
    rng_device = generator.device if generator is not None else x.device
    flip = (torch.rand(x.shape[0], generator=generator, device=rng_device) < 0.5).to(x.device)
    return torch.where(flip.view(-1, *([1] * (x.dim() - 1))), x.flip(-1), x)
