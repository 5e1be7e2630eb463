"""Chapter 0: CIFAR-10, ZCA whitening and the linear-probe harness every later chapter uses."""
from __future__ import annotations

import contextlib

import matplotlib.pyplot as plt
import torch

from ..data import CIFAR10_CLASSES
from ..plots.filters import plot_image_grid
from ..runtime import is_quick, single_thread


def show_examples(images: torch.Tensor, labels: torch.Tensor, per_class: int = 3):
    """The first ``per_class`` images of every class, titled with their class names."""
    firsts = [torch.nonzero(labels == c).flatten()[:per_class] for c in range(len(CIFAR10_CLASSES))]
    picks = torch.stack(firsts, dim=1).flatten()  # row k holds the k-th image of every class
    names = [CIFAR10_CLASSES[int(labels[i])] for i in picks]
    return plot_image_grid(images[picks].float() / 255, ncols=len(CIFAR10_CLASSES), labels=names,
                           title="CIFAR-10: a few images of each class")


def class_balance(labels: torch.Tensor, title: str = "images per class"):
    counts = torch.bincount(labels, minlength=len(CIFAR10_CLASSES))
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.bar(CIFAR10_CLASSES, counts.numpy(), color="tab:blue")
    ax.set_ylabel("images")
    ax.set_title(f"{title} (total {int(counts.sum())})")
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig


def _off_diagonal_ratio(covariance: torch.Tensor) -> float:
    """mean |off-diagonal| / mean diagonal of a covariance matrix (≈ 0 for white data)."""
    d = covariance.shape[0]
    off = covariance.abs().sum() - covariance.diagonal().abs().sum()
    return float(off / (d * (d - 1)) / covariance.diagonal().mean())


def whitening_demo(explorer: "WhiteningExplorer", eps: float = 1e-3):
    """Originals, whitened images and the eigenvalue spectrum of the pixel covariance before and after
    ZCA, from the explorer's eigendecomposition Σ = U S U^T: after whitening the covariance is
    U S/(S+ε) U^T. Returns (figure, numbers)."""
    S = explorer.eigenvalues.clamp_min(0)
    white_spectrum = S / (S + eps)
    numbers = {"off_diagonal_before": _off_diagonal_ratio(explorer.covariance()),
               "off_diagonal_after": _off_diagonal_ratio(explorer.covariance(eps))}
    rank = min(explorer.n_images - 1, S.numel())  # fewer images than pixels: the rest is exactly zero
    fig = plt.figure(figsize=(11, 3.6))
    left, right = fig.subfigures(1, 2, width_ratios=[1.6, 1])
    explorer.draw(eps, left)
    ax = right.subplots()
    ax.semilogy(S.flip(0)[:rank].numpy(), label="original")
    ax.semilogy(white_spectrum.flip(0)[:rank].numpy(), label="whitened")
    ax.set_xlabel("eigenvalue index")
    ax.set_ylabel("variance")
    ax.set_title("pixel-covariance spectrum")
    ax.legend()
    return fig, numbers


class RandomConvFeatures(torch.nn.Module):
    """An untrained (random-weight) convolutional layer as a feature extractor: the baseline every
    Hebbian layer has to beat. conv (kaiming-uniform weights) → Triangle → max-pool, flattened.
    Feed it standardised images."""

    def __init__(self, out_channels: int = 96, kernel_size: int = 5, seed: int = 0):
        super().__init__()
        from ..activations import Triangle

        generator = torch.Generator().manual_seed(seed)
        self.conv = torch.nn.Conv2d(3, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        bound = 1 / (3 * kernel_size**2) ** 0.5
        with torch.no_grad():
            self.conv.weight.uniform_(-bound, bound, generator=generator)
        self.act, self.pool = Triangle(1.0), torch.nn.MaxPool2d(4, 2, 1)
        self.num_features = out_channels * 16 * 16

    def features(self, x):
        from ..networks.blocks import activate_and_pool  # pool(act(conv x)), the CPU-fast way

        if x.device.type == "cpu":  # a channels-last conv output feeds the channels-last pool: 1.7x here
            x = x.contiguous(memory_format=torch.channels_last)
        return activate_and_pool(self.act, self.pool, self.conv(x)).flatten(1)


class PixelFeatures(torch.nn.Module):
    """The raw (normalised) pixels as features: the floor of the linear probe."""

    num_features = 3 * 32 * 32

    def features(self, x):
        return x.flatten(1)


def baseline_probes(train, val, test, epochs: int, device=None) -> dict:
    """The linear probe on the two baselines, raw pixels and a random conv layer:
    ``{name: (test accuracy at the best-validation epoch, final test accuracy)}``, printed as they finish.
    In quick mode on one thread (on a shared 2-core CPU, two threads make it twice slower)."""
    from ..classifier import linear_probe

    results = {}
    with single_thread() if is_quick() else contextlib.nullcontext():
        for name, model in (("raw pixels", PixelFeatures()), ("random conv layer", RandomConvFeatures())):
            history = linear_probe(model.to(device or train.device), train, val, test, epochs=epochs, progress=False)
            results[name] = probe_accuracy(history)
            print(f"{name:>18}: test accuracy {results[name][0]:.1f}% at the best validation epoch "
                  f"({results[name][1]:.1f}% after the last epoch); {model.num_features:,} features")
    return results


def probe_accuracy(history) -> tuple[float, float]:
    """(test accuracy at the best-validation epoch, final test accuracy) of a probe's records."""
    best = max(history, key=lambda r: r["val_acc"])
    return best["test_acc"], history[-1]["test_acc"]


def zca_matrix(covariance: torch.Tensor, eps: float) -> torch.Tensor:
    """Reference solution of the exercise: ``W = U (S + eps)^(-1/2) U^T`` from ``Σ = U S U^T`` (eq 37)."""
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    return eigenvectors @ torch.diag((eigenvalues.clamp_min(0) + eps).rsqrt()) @ eigenvectors.T


class WhiteningExplorer:
    """Eigendecomposition of the pixel covariance done once, so the ε slider can redraw at once:
    for any ε the whitening matrix is ``U (S + ε)^(-1/2) U^T``.

    With fewer images than pixels (n ≤ d) the covariance ``Σ = XᵀX/(n−1)`` of the centred images X has
    rank < n, and its non-zero eigenpairs come from the small n×n Gram matrix ``G = XXᵀ/(n−1) = V Λ Vᵀ``:
    ``Σ (Xᵀv) = Xᵀ(G v) = λ Xᵀv``, so ``U_r = Xᵀ V Λ^(-1/2) / √(n−1)`` (unit columns). The other d − r
    eigenvalues are exactly 0 (their directions are scaled by ε^(-1/2)). For 2,000 CIFAR images this
    is a 2,000² instead of a 3,072² eigendecomposition (about 4x less work)."""

    def __init__(self, images: torch.Tensor, n_show: int = 6):
        # LAPACK's threaded eigh is ~8x slower on a busy 2-core CPU than on one thread: quick mode uses one.
        with single_thread() if is_quick() else contextlib.nullcontext():
            self._decompose(images, n_show)

    def _decompose(self, images: torch.Tensor, n_show: int):
        x = images.double().flatten(1) / 255
        n, d = x.shape
        if n < 2:
            raise ValueError(f"WhiteningExplorer needs at least 2 images, got {n}")
        self.mean = x.mean(0)
        centred = x - self.mean
        if n <= d:
            gram_values, gram_vectors = torch.linalg.eigh(centred @ centred.T / (n - 1))
            keep = gram_values > gram_values.max() * d * torch.finfo(torch.float64).eps
            values = gram_values[keep]
            vectors = centred.T @ gram_vectors[:, keep] / (values * (n - 1)).sqrt()
        else:
            values, vectors = torch.linalg.eigh(centred.T @ centred / (n - 1))
        self.eigenvectors = vectors  # d × r, ascending eigenvalues; r = d when n > d
        # All d eigenvalues, ascending: the d − r zeros first.
        self.eigenvalues = torch.cat([values.new_zeros(d - len(values)), values])
        self.shown = centred[:n_show]
        self.n_images = n
        self.originals = images[:n_show].float() / 255
        self.image_shape = tuple(images.shape[1:])

    def whiten(self, eps: float) -> torch.Tensor:
        """``(x − μ) U (S + ε)^(-1/2) Uᵀ`` for the shown images, the zero-eigenvalue directions included."""
        r = self.eigenvectors.shape[1]
        scale = (self.eigenvalues[-r:].clamp_min(0) + eps).rsqrt()
        projected = self.shown @ self.eigenvectors
        white = (projected * scale) @ self.eigenvectors.T
        rest = self.shown - projected @ self.eigenvectors.T  # the part in the null space of Σ
        white = white + rest * eps**-0.5
        return white.float().view(-1, *self.image_shape)

    def covariance(self, eps: float | None = None) -> torch.Tensor:
        """The pixel covariance ``U S Uᵀ`` (``eps`` None), or that of the whitened images,
        ``U S/(S+ε) Uᵀ`` (the null space contributes nothing to either)."""
        r = self.eigenvectors.shape[1]
        S = self.eigenvalues[-r:].clamp_min(0)
        spectrum = S if eps is None else S / (S + eps)
        return (self.eigenvectors * spectrum) @ self.eigenvectors.T

    def draw(self, eps: float, fig):
        """Originals (top row) and whitened images (bottom row) into ``fig`` (a figure or subfigure)."""
        white = self.whiten(eps)
        axes = fig.subplots(2, len(white))
        for i in range(len(white)):
            for row, img in enumerate((self.originals[i], white[i])):
                img = img.permute(1, 2, 0)
                img = (img - img.min()) / (img.max() - img.min() + 1e-12)
                axes[row, i].imshow(img.numpy(), interpolation="nearest")
                axes[row, i].set_xticks([]), axes[row, i].set_yticks([])
        axes[0, 0].set_ylabel("original")
        axes[1, 0].set_ylabel(f"ε = {eps:g}")

    def show(self, eps: float = 1e-3):
        eps = float(eps)
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        fig = plt.figure(figsize=(1.6 * len(self.shown), 3.4), layout="constrained")
        self.draw(eps, fig)
        fig.suptitle("small ε: edges only (and noise); large ε: close to the original")
        return fig
