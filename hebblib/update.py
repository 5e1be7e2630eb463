"""The vectorised Hebbian update of a convolutional layer.

For weights W (out, in/groups, kh, kw), an input x that is already padded, and per-position factors
r and s shaped like the layer's output (N, out, H', W'):

    ΔW[o, c, i, j] = Σ_{n,h,w} r[n,o,h,w] · x[n, c, h·stride + i·dilation, w·stride + j·dilation]
                     − (Σ_{n,h,w} s[n,o,h,w]) · W[o, c, i, j]

The first term is exactly the gradient of ``Σ r ⊙ conv2d(x, W)`` with respect to W, which PyTorch
computes with one call (``torch.nn.grad.conv2d_weight``, the transposed-convolution trick of
FastHebb / SoftHebb); there is no loop over channels, positions or samples.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_weight

from .errors import check_choice
from .runtime import cpu_has_bf16_instructions

UPDATE_NORMS = ("global_max", "per_filter", "none")


def hebbian_term(x: torch.Tensor, r: torch.Tensor, weight_shape, stride=1, dilation=1, groups=1) -> torch.Tensor:
    """``Σ_{n,p} r[n,o,p] · x_patch[n,p]`` for every (o, c, i, j), as one convolution."""
    return conv2d_weight(x, weight_shape, r, stride=stride, padding=0, dilation=dilation, groups=groups)


def hebbian_term_broadcast(x: torch.Tensor, r: torch.Tensor, weight_shape) -> torch.Tensor:
    """The Hebbian term when ``r`` is larger than the layer's output grid (the original statistical
    mode's double padding): the correlation is taken at the offsets that fit and broadcast over the
    kernel, reproducing the original's spatially uniform update."""
    term = F.conv2d(x.transpose(0, 1), r.transpose(0, 1)).transpose(0, 1)
    return term.expand(weight_shape).contiguous() if term.shape[-2:] != weight_shape[-2:] else term


def unfold_hebbian_term(x: torch.Tensor, r: torch.Tensor, weight_shape, stride=1, dilation=1) -> torch.Tensor:
    """Naive reference: explicit patches with ``F.unfold`` and one matrix product (groups=1 only).
    Used as the baseline in benchmarks; slower and much hungrier for memory."""
    out_ch, in_ch, kh, kw = weight_shape
    patches = F.unfold(x, (kh, kw), dilation=dilation, stride=stride)  # (N, in·kh·kw, L)
    r_flat = r.flatten(2)  # (N, out, L)
    return torch.einsum("nol,nkl->ok", r_flat, patches).view(weight_shape)


# ----- bf16 products ---------------------------------------------------------------------------------
# A CPU with AMX multiplies bf16 matrices 4-6x faster than fp32 ones, but its bf16 convolutions gain less, and
# the weight gradient of a convolution least (2x). With explicit patches, the forward convolution and the
# Hebbian term become two plain matrix products that share one copy of the input's patches:
#     u  = P · Wᵀ        P: (N·H'·W', kh·kw·C) patches, W: (out, kh·kw·C)
#     H  = Rᵀ · P        R: (N·H'·W', out) the rule's Hebbian factor
# From this fan-in (in_channels·kh·kw) up the CPU forms its bf16 products that way (measured per layer of
# SoftHebb's network by ``python -m hebblib bench``; below it the convolution kernels win).
MATMUL_MIN_FAN_IN = 256
# Below this fan-in a layer keeps fp32 products in a bf16 run: the image-facing layers (3·5·5 = 75 inputs for
# CIFAR-10, 1·5·5 for Fashion-MNIST) see raw pixels, whose rounding to bf16 was the largest error in soft's
# features (relative error 5.7e-3 of the 7.2e-3 of bf16 everywhere; features with conv1 in fp32 cost 0.15
# instead of 0.43 points of test accuracy on the same Hebbian weights), and they are about 2 % of the products
# (on the AMX CPU conv1's fp32 forward and update were faster than bf16 anyway: docs/performance.md)
BF16_MIN_FAN_IN = 128
# How bf16 products are computed: 'native' (PyTorch's bf16 kernels), 'emulated' (the bf16 operands widened to
# fp32, which is exact, multiplied with fp32 accumulation, the result rounded to bf16: the same arithmetic as a
# native kernel up to the order of the sums), or 'auto': emulated on a CPU without bf16 instructions (no
# avx512_bf16, amx_bf16 or Arm bf16 flag), where PyTorch's bf16 products run a generic loop (on a 2-core AMD
# EPYC with AVX2: about 1 GFLOP/s against fp32's 100; docs/performance.md), native elsewhere.
BF16_PRODUCTS_CHOICES = ("auto", "native", "emulated")
bf16_products = "auto"
# read once, at import (a file read inside a compiled function would break its graph)
CPU_HAS_BF16 = cpu_has_bf16_instructions()


def emulate_bf16(device) -> bool:
    """Whether bf16 products on ``device`` are emulated in fp32 (see :data:`bf16_products`)."""
    check_choice("hebblib.update.bf16_products", bf16_products, BF16_PRODUCTS_CHOICES)
    if bf16_products != "auto":
        return bf16_products == "emulated"
    return device.type == "cpu" and not CPU_HAS_BF16


def bf16_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` of two bf16 matrices with fp32 accumulation, returned in bf16 (emulated where
    :func:`emulate_bf16`)."""
    if emulate_bf16(a.device):
        return (a.float() @ b.float()).to(torch.bfloat16)
    return a @ b


def bf16_conv2d(x: torch.Tensor, weight: torch.Tensor, stride=1, dilation=1) -> torch.Tensor:
    """``F.conv2d`` of bf16 operands in their memory format, returned in bf16 (emulated where
    :func:`emulate_bf16`)."""
    if emulate_bf16(x.device):
        fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        out = F.conv2d(x.float(), weight.float(), stride=stride, dilation=dilation)
        return out.to(torch.bfloat16, memory_format=fmt)
    return F.conv2d(x, weight, stride=stride, dilation=dilation)


def bf16_hebbian_term(x: torch.Tensor, r: torch.Tensor, weight_shape, stride=1, dilation=1) -> torch.Tensor:
    """:func:`hebbian_term` of bf16 operands (groups = 1), returned in float32 after rounding to bf16 as the
    native kernel's output is (emulated where :func:`emulate_bf16`)."""
    if emulate_bf16(x.device):
        term = hebbian_term(x.float(), r.float(), weight_shape, stride, dilation)
        return term.to(torch.bfloat16).float()
    return hebbian_term(x, r, weight_shape, stride, dilation).float()


def low_precision_kernel(device_type: str, fan_in: int) -> str:
    """How a layer forms its bf16 products: ``'matmul'`` (explicit patches; the CPU from
    :data:`MATMUL_MIN_FAN_IN` up) or ``'conv'`` (the convolution kernels: cuDNN on the GPU)."""
    return "matmul" if device_type == "cpu" and fan_in >= MATMUL_MIN_FAN_IN else "conv"


def unfold_patches(x: torch.Tensor, kernel_size, stride=(1, 1), dilation=(1, 1)) -> torch.Tensor:
    """The patches of an (already padded) input as a contiguous (N, H', W', kh·kw·C) tensor, ordered
    (kh, kw, C): one strided copy of the channels-last input, in the input's dtype."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    out_h, out_w = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    x = x.contiguous(memory_format=torch.channels_last)
    s_n, s_c, s_h, s_w = x.stride()
    view = x.as_strided((n, out_h, out_w, kh, kw, c), (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c))
    return view.reshape(n, out_h, out_w, kh * kw * c)


def weight_matrix(weight: torch.Tensor) -> torch.Tensor:
    """Weights (out, C, kh, kw) as the (out, kh·kw·C) matrix that multiplies :func:`unfold_patches`."""
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)


def hebbian_term_from_patches(patches: torch.Tensor, r: torch.Tensor, weight_shape) -> torch.Tensor:
    """``Σ_{n,p} r[n,o,p] · x_patch[n,p]`` as one matrix product ``Rᵀ · P`` in the patches' dtype (fp32
    accumulation), returned in float32 with the weights' shape (groups = 1)."""
    out_ch, in_ch, kh, kw = weight_shape
    # (out, N·H'·W') ordered as the patches' rows, cast in the same pass that moves the units to the front
    # (it copies runs of H'·W' values); the product is then of two row-major matrices
    n = r.shape[0]
    factor = torch.empty((out_ch, n, r[0, 0].numel()), dtype=patches.dtype, device=r.device)
    factor.copy_(r.reshape(n, out_ch, -1).transpose(0, 1))
    product = bf16_matmul if patches.dtype == torch.bfloat16 else torch.matmul
    term = product(factor.view(out_ch, -1), patches.reshape(-1, patches.shape[-1]))
    return term.float().view(out_ch, kh, kw, in_ch).permute(0, 3, 1, 2).contiguous()


def normalize_update(delta: torch.Tensor, mode: str = "global_max") -> torch.Tensor:
    """Scale an update so its largest entry is 1: over the whole layer (``global_max``, Nimmo),
    per unit (``per_filter``, Krotov–Hopfield conv), or not at all (``none``)."""
    check_choice("update_norm", mode, UPDATE_NORMS)
    if mode == "none":
        return delta
    if mode == "global_max":
        return delta / (delta.abs().max() + 1e-30)
    peak = delta.abs().reshape(delta.shape[0], -1).amax(dim=1)
    return delta / (peak.view(-1, *([1] * (delta.dim() - 1))) + 1e-30)
