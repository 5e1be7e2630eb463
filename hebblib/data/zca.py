"""ZCA whitening of images, fitted on training images only (spec nimmo-thesis §3.2; thesis §3.1.2 eqs 33-38).

With X the n x D matrix of training images on the [0, 1] scale, each flattened in C x H x W order:

    mu    = (1/n) sum_i X_i                      (33)
    X~    = X - mu                               (34)
    Sigma = X~^T X~ / (n - 1)                    (35)
    Sigma = U S U^T    (eigh; Sigma is symmetric) (36)
    W     = U (S + eps I)^(-1/2) U^T             (37)
    x_zca = (x - mu) W                           (38)

The thesis code fitted on train + test images and flattened H x W x C while applying to C x H x W tensors;
here the fit uses the training images only and the same CHW order as the transform.
After whitening, the covariance of the training data is U S/(S + eps) U^T: the identity, except along
directions whose variance is not well above ``eps`` (those are damped rather than blown up).
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from .cifar import data_root, repo_root

ZCA_METHOD_VERSION = 1  # bump when the fit changes, so stale cached matrices are not reused
CACHE_ENV = "HEBBLIB_CACHE"  # optional folder for cached matrices, before <data_root>/cache


def _as_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 0-255 -> float64 on [0, 1]; float input is taken to be on [0, 1] already."""
    if images.dtype == torch.uint8:
        return images.double() / 255.0
    if not images.is_floating_point():
        raise ValueError(f"images must be uint8 (0-255) or float (0-1), got dtype {images.dtype}")
    return images.double()


def _flatten(images: torch.Tensor) -> torch.Tensor:
    """N x C x H x W (or N x D) -> N x D, flattening each image in C, H, W order."""
    if images.dim() not in (2, 4):
        raise ValueError(f"expected images N x C x H x W (or N x D), got shape {tuple(images.shape)}")
    return images.reshape(images.shape[0], -1)


def pixel_covariance(x: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D) and covariance (D x D, divided by n - 1) of flattened images, in float64, chunk by chunk."""
    flat = _flatten(x)
    n = flat.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 images to estimate a covariance, got {n}")
    mean = torch.zeros(flat.shape[1], dtype=torch.float64, device=flat.device)
    for start in range(0, n, chunk):
        mean += _as_unit_float(flat[start:start + chunk]).sum(0)
    mean /= n
    cov = torch.zeros(flat.shape[1], flat.shape[1], dtype=torch.float64, device=flat.device)
    for start in range(0, n, chunk):
        centred = _as_unit_float(flat[start:start + chunk]) - mean  # eq (34)
        cov += centred.T @ centred
    return mean, cov / (n - 1)  # eq (35)


def covariance_spectrum(x: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of the pixel covariance of ``x`` (N x C x H x W or N x D), largest first, float64."""
    _, cov = pixel_covariance(x)
    return torch.linalg.eigvalsh(cov).flip(0)


def off_diagonal_ratio(x: torch.Tensor) -> float:
    """mean |off-diagonal covariance| / mean diagonal covariance: ~0 for white data, large for images."""
    _, cov = pixel_covariance(x)
    d = cov.shape[0]
    if d < 2:
        raise ValueError(f"need at least 2 features for an off-diagonal, got {d}")
    diag = cov.diagonal()
    off_sum = cov.abs().sum() - diag.abs().sum()
    return float((off_sum / (d * (d - 1))) / diag.mean())


def _check_eps(eps) -> float:
    if not isinstance(eps, (int, float)) or not eps > 0:
        raise ValueError(f"eps must be a number > 0 (it regularises small eigenvalues), got {eps!r}")
    return float(eps)


class ZCA(nn.Module):
    """ZCA whitening ``x -> (x - mean) W`` for N x C x H x W batches on the [0, 1] scale.

    ``mean`` (D) and ``matrix`` (D x D) are buffers, so ``.to(device)`` and ``state_dict()`` carry them.
    Use :meth:`fit` on training images (uint8 0-255 or float 0-1), or :func:`fit_zca` to cache the result.
    """

    def __init__(self, eps: float = 1e-3):
        super().__init__()
        self.eps = _check_eps(eps)
        self.register_buffer("mean", None)
        self.register_buffer("matrix", None)
        self.register_buffer("inverse_matrix", None)

    @torch.no_grad()
    def fit(self, images: torch.Tensor, eps: float | None = None) -> "ZCA":
        """Fit mean and whitening matrix on ``images`` (eqs 33-37) in float64; store them as float32."""
        if eps is not None:
            self.eps = _check_eps(eps)
        mean, cov = pixel_covariance(images)
        eigvals, eigvecs = torch.linalg.eigh(cov)  # eq (36)
        eigvals = eigvals.clamp(min=0.0)  # round-off can make the tiniest ones slightly negative
        scale = (eigvals + self.eps).rsqrt()
        self.mean = mean.float()
        self.matrix = ((eigvecs * scale) @ eigvecs.T).float()  # eq (37): U diag(scale) U^T
        self.inverse_matrix = ((eigvecs / scale) @ eigvecs.T).float()
        return self

    def _check(self, x: torch.Tensor) -> None:
        if self.matrix is None:
            raise RuntimeError("this ZCA is not fitted yet: call .fit(train_images) or use fit_zca(...)")
        if x.dim() != 4 or x[0].numel() != self.mean.numel():
            raise ValueError(
                f"expected a batch N x C x H x W with C*H*W = {self.mean.numel()}, got shape {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Whiten a float batch on [0, 1] (eq 38); the output has the input's shape."""
        self._check(x)
        flat = x.reshape(x.shape[0], -1).to(self.matrix.dtype)
        return ((flat - self.mean) @ self.matrix).reshape(x.shape)  # W is symmetric: W^T = W

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Undo the whitening: ``z W^-1 + mean`` (for showing whitened filters or images)."""
        self._check(z)
        flat = z.reshape(z.shape[0], -1).to(self.matrix.dtype)
        return (flat @ self.inverse_matrix + self.mean).reshape(z.shape)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # An unfitted ZCA has no tensors yet: take the shapes from the state being loaded.
        for name in ("mean", "matrix", "inverse_matrix"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        dim = "unfitted" if self.mean is None else f"dim={self.mean.numel()}"
        return f"{dim}, eps={self.eps:g}"


def zca_cache_key(images: torch.Tensor, eps: float) -> str:
    """A short hash of everything the fit depends on: image bytes, shape, dtype, eps, method version."""
    h = hashlib.sha1()
    h.update(f"{tuple(images.shape)}|{images.dtype}|{float(eps)!r}|v{ZCA_METHOD_VERSION}".encode())
    h.update(images.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _cache_dirs(root) -> list[Path]:
    """Where cached matrices are looked for, in order: ``$HEBBLIB_CACHE`` if set, ``<data_root>/cache``,
    then ``<repo>/data/cache`` (used when the data root is read-only, e.g. a shared copy of CIFAR-10)."""
    dirs = [Path(os.environ[CACHE_ENV]).expanduser()] if os.environ.get(CACHE_ENV) else []
    dirs += [data_root(root) / "cache", repo_root() / "data" / "cache"]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def _writable(folder: Path) -> bool:
    """True when ``folder`` (or its nearest existing parent) may be written to. Permission bits are
    honoured even for root, so a folder marked read-only is left alone."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o200)


def fit_zca(
    images: torch.Tensor,
    eps: float = 1e-3,
    root: str | os.PathLike | None = None,
    cache: bool = True,
) -> ZCA:
    """A ZCA fitted on ``images`` (the training images), loaded from ``<data_root>/cache/zca_<key>.pt``
    when that file exists, else fitted and saved there (see :func:`zca_cache_key` and ``_cache_dirs``)."""
    zca = ZCA(eps)
    if not cache:
        return zca.fit(images)
    name = f"zca_{zca_cache_key(images, eps)}.pt"
    dirs = _cache_dirs(root)
    for folder in dirs:
        if (folder / name).is_file():
            zca.load_state_dict(torch.load(folder / name, map_location="cpu", weights_only=True))
            return zca.to(images.device)  # eps is part of the key, so it matches
    zca.fit(images)
    for folder in filter(_writable, dirs):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # write then rename: runs started together may fit the same matrix, and a reader must never
            # see a half-written file
            partial = folder / f".{name}.{os.getpid()}.partial"
            torch.save({k: v.cpu() for k, v in zca.state_dict().items()}, partial)
            os.replace(partial, folder / name)
            return zca
        except OSError:
            continue
    warnings.warn(f"could not save the ZCA matrix in any of {[str(d) for d in dirs]}; it will be refitted")
    return zca
