"""Toy data for the first chapters: correlated Gaussian clouds, clusters, and natural-image patches.

Every function takes a ``seed`` and returns float32 torch tensors, so a chapter's figures are repeatable.
"""
from __future__ import annotations

import torch

from .subset import load_subset
from .zca import ZCA


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _check_n(n) -> int:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return n


def gaussian_cloud(n: int, mean, cov, seed: int = 0) -> torch.Tensor:
    """``n`` samples (n x D) of a Gaussian with the given mean (D) and covariance (D x D, e.g. D = 2 or 3).

    x = mean + z A^T with z ~ N(0, I) and A A^T = cov; A = U sqrt(S) from eigh, so a singular
    (positive semi-definite) covariance such as a perfect correlation works too.
    """
    _check_n(n)
    mean = torch.as_tensor(mean, dtype=torch.float64).flatten()
    cov = torch.as_tensor(cov, dtype=torch.float64)
    d = mean.numel()
    if cov.shape != (d, d):
        raise ValueError(f"cov must be {d} x {d} to match mean of length {d}, got shape {tuple(cov.shape)}")
    if not torch.allclose(cov, cov.T):
        raise ValueError(f"cov must be symmetric, got {cov.tolist()}")
    eigvals, eigvecs = torch.linalg.eigh(cov)
    if eigvals.min() < -1e-9 * max(1.0, float(eigvals.abs().max())):
        raise ValueError(f"cov must be positive semi-definite; its eigenvalues are {eigvals.tolist()}")
    factor = eigvecs * eigvals.clamp(min=0).sqrt()  # A = U sqrt(S), A A^T = cov
    z = torch.randn(n, d, generator=_generator(seed), dtype=torch.float64)
    return (mean + z @ factor.T).float()


def correlated_gaussian_2d(n: int, correlation: float = 0.8, seed: int = 0, std=(1.0, 1.0)) -> torch.Tensor:
    """``n`` zero-mean 2-D points with the given correlation coefficient (in [-1, 1]) and per-axis std."""
    if not -1.0 <= correlation <= 1.0:
        raise ValueError(f"correlation must be in [-1, 1], got {correlation!r}")
    s1, s2 = std
    cov = [[s1 * s1, correlation * s1 * s2], [correlation * s1 * s2, s2 * s2]]
    return gaussian_cloud(n, [0.0, 0.0], cov, seed)


def gaussian_clusters(
    n: int, centers=3, std: float = 0.5, seed: int = 0, dim: int = 2, spread: float = 4.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points around K centres: returns ``(points n x D, cluster ids n int64)``.

    ``centers`` is a K x D array of centres, or an int K: then K centres are drawn uniformly in
    [-spread, spread]^dim. Clusters get n // K points each (the first n % K clusters one more),
    isotropic with standard deviation ``std``; the points come out shuffled.
    """
    _check_n(n)
    gen = _generator(seed)
    if isinstance(centers, int):
        if centers < 1:
            raise ValueError(f"the number of centers must be >= 1, got {centers}")
        centers = (torch.rand(centers, dim, generator=gen, dtype=torch.float64) * 2 - 1) * spread
    centers = torch.as_tensor(centers, dtype=torch.float64)
    if centers.dim() != 2:
        raise ValueError(f"centers must be an int K or a K x D array, got shape {tuple(centers.shape)}")
    ids = torch.arange(n) % centers.shape[0]
    ids = ids[torch.randperm(n, generator=gen)]
    noise = torch.randn(n, centers.shape[1], generator=gen, dtype=torch.float64) * std
    return (centers[ids] + noise).float(), ids.long()


def image_patches(
    n: int, size: int = 5, images: torch.Tensor | None = None, whiten: bool = True, seed: int = 0,
    eps: float = 1e-3,
) -> torch.Tensor:
    """``n`` random ``size`` x ``size`` patches of natural images, flattened (n x C*size*size, CHW order).

    ``images``: uint8 N x C x H x W (default: the shipped CIFAR-10 training subset). Pixels are scaled to
    [0, 1]; with ``whiten`` the patches are ZCA-whitened with a ZCA fitted on these same patches.
    """
    _check_n(n)
    images = load_subset(train=True)[0] if images is None else images
    if images.dim() != 4:
        raise ValueError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
    height, width = images.shape[-2:]
    if not isinstance(size, int) or not 1 <= size <= min(height, width):
        raise ValueError(f"size must be an int in [1, {min(height, width)}], got {size!r}")
    gen = _generator(seed)
    which = torch.randint(images.shape[0], (n,), generator=gen)
    top = torch.randint(height - size + 1, (n,), generator=gen)
    left = torch.randint(width - size + 1, (n,), generator=gen)
    offsets = torch.arange(size)
    rows = (top[:, None] + offsets)[:, None, :, None]  # n x 1 x size x 1
    cols = (left[:, None] + offsets)[:, None, None, :]  # n x 1 x 1 x size
    channels = torch.arange(images.shape[1])[None, :, None, None]
    patches = images[which[:, None, None, None], channels, rows, cols]  # n x C x size x size
    patches = patches.float() / 255.0 if images.dtype == torch.uint8 else patches.float()
    if whiten:
        patches = ZCA(eps).fit(patches)(patches)
    return patches.reshape(n, -1)
