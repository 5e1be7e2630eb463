"""Chapter 0: CIFAR-10, ZCA whitening and the linear-probe harness every later chapter uses."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from ..data import CIFAR10_CLASSES, covariance_spectrum, fit_zca, off_diagonal_ratio
from ..plots.filters import plot_image_grid


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


def whitening_demo(images: torch.Tensor, eps: float = 1e-3, n_show: int = 6, fit_on: int | None = None):
    """Fit ZCA on ``images`` (training images only) and show originals, whitened images and the
    eigenvalue spectrum of the pixel covariance before and after. Returns (figure, numbers)."""
    fit_images = images if fit_on is None else images[:fit_on]
    zca = fit_zca(fit_images, eps=eps)
    x = images.float() / 255
    white = zca(x)
    before, after = covariance_spectrum(x), covariance_spectrum(white)
    numbers = {"off_diagonal_before": off_diagonal_ratio(x), "off_diagonal_after": off_diagonal_ratio(white)}

    rank = min(x.shape[0] - 1, before.numel())  # fewer images than pixels: the rest is exactly zero
    fig = plt.figure(figsize=(11, 3.6))
    left, right = fig.subfigures(1, 2, width_ratios=[1.6, 1])
    axes = left.subplots(2, n_show)
    for i in range(n_show):
        for row, batch in enumerate((x, white)):
            img = batch[i].permute(1, 2, 0)
            img = (img - img.min()) / (img.max() - img.min() + 1e-12)
            axes[row, i].imshow(img.numpy(), interpolation="nearest")
            axes[row, i].set_xticks([]), axes[row, i].set_yticks([])
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel(f"ZCA ε={eps:g}")
    ax = right.subplots()
    ax.semilogy(before[:rank].numpy(), label="original")
    ax.semilogy(after[:rank].numpy(), label="whitened")
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
        return self.pool(self.act(self.conv(x))).flatten(1)


class PixelFeatures(torch.nn.Module):
    """The raw (normalised) pixels as features: the floor of the linear probe."""

    num_features = 3 * 32 * 32

    def features(self, x):
        return x.flatten(1)


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
    for any ε the whitening matrix is ``U (S + ε)^(-1/2) U^T``."""

    def __init__(self, images: torch.Tensor, n_show: int = 6):
        x = images.double().flatten(1) / 255
        self.mean = x.mean(0)
        centred = x - self.mean
        covariance = centred.T @ centred / (len(x) - 1)
        self.eigenvalues, self.eigenvectors = torch.linalg.eigh(covariance)
        self.shown = centred[:n_show]
        self.originals = images[:n_show].float() / 255

    def whiten(self, eps: float) -> torch.Tensor:
        scale = (self.eigenvalues.clamp_min(0) + eps).rsqrt()
        projected = self.shown @ self.eigenvectors
        return ((projected * scale) @ self.eigenvectors.T).float().view(-1, 3, 32, 32)

    def show(self, eps: float = 1e-3):
        eps = float(eps)
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        white = self.whiten(eps)
        fig, axes = plt.subplots(2, len(white), figsize=(1.6 * len(white), 3.4))
        for i in range(len(white)):
            for row, img in enumerate((self.originals[i], white[i])):
                img = img.permute(1, 2, 0)
                img = (img - img.min()) / (img.max() - img.min() + 1e-12)
                axes[row, i].imshow(img.numpy(), interpolation="nearest")
                axes[row, i].set_xticks([]), axes[row, i].set_yticks([])
        axes[0, 0].set_ylabel("original")
        axes[1, 0].set_ylabel(f"ε = {eps:g}")
        fig.suptitle("small ε: edges only (and noise); large ε: close to the original")
        fig.tight_layout()
        return fig
