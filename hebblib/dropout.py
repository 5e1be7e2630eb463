"""Dropout whose mask is cheap to draw on the CPU.

``torch.nn.Dropout`` on the CPU draws one Bernoulli sample per element, about 40 ms for a 64 × 24,576
batch of features on one core: most of the classifier phase's time. Here the mask comes from random
64-bit words cut into 16-bit integers ``r`` (four per word, uniform on [−2¹⁵, 2¹⁵)), and

    keep = r ≥ −2¹⁵ + round(p · 2¹⁶),        y = x · keep / (1 − p)

so ``p`` is rounded to a multiple of 2⁻¹⁶ (exact for 0.5). It is 5-6x faster on the CPU. On other devices
(where ``F.dropout`` is a fused kernel) and in ``eval()`` mode it does what ``nn.Dropout`` does.

Sixteen bits decide any such ``p``, but fewer do when ``p`` is a multiple of 2⁻ᵐ: one bit for 0.5, two for
0.25 or 0.75. The compiled probe (``hebblib.classifier``, ``compile=True``) reads the words as ``m``-bit
unsigned fields ``u`` (:func:`field_bits`, :func:`packed_keep`) and keeps an element when
``u ≥ p · 2ᵐ``: the same law for every element, from 16/``m`` times fewer random words (drawing them is
most of a probe step on the CPU), but other masks than the 16-bit reading of the eager path.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_WORD_BOUND = 2**63 - 1


def dropout_mask(shape, p: float, *, device=None, dtype=torch.float32, generator=None) -> torch.Tensor:
    """A mask of ``0`` (probability ≈ ``p``) and ``1 / (1 − p)``, of the given shape."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability p={p!r} must be in [0, 1)")
    return _keep(shape, p, device, generator).to(dtype).mul_(1.0 / (1.0 - p))


def random_words(n: int, device=None, generator=None) -> torch.Tensor:
    """The random 64-bit words whose 16-bit pieces decide ``n`` mask values (the one draw of a mask)."""
    return torch.randint(-_WORD_BOUND - 1, _WORD_BOUND, ((n + 3) // 4,), dtype=torch.int64, device=device,
                         generator=generator)


def keep_threshold(p: float) -> int:
    """A mask value is kept when its 16-bit integer is at least this: ``−2¹⁵ + round(p · 2¹⁶)``."""
    return -(2**15) + round(p * 2**16)


FIELD_BITS = (1, 2, 4, 8, 16)  # field widths that tile a 64-bit word


def field_bits(p: float) -> int:
    """The fewest random bits per mask value, of :data:`FIELD_BITS`, that decide it with probability ``p``
    rounded as :func:`keep_threshold` rounds it (a multiple of 2⁻¹⁶): 1 for 0.5, 2 for 0.25, 16 for 0.2."""
    steps = round(p * 2**16)
    return next(bits for bits in FIELD_BITS if steps % 2 ** (16 - bits) == 0)


def packed_words(n: int, bits: int, device=None, generator=None) -> torch.Tensor:
    """The random words whose ``bits``-bit fields decide ``n`` mask values (:func:`packed_keep`)."""
    return random_words(-(-n * bits // 16), device, generator)


def field_threshold(p: float, bits: int) -> int:
    """What a ``bits``-bit unsigned field must reach to keep its value: ``p · 2**bits``, with ``p`` rounded to
    a multiple of 2⁻¹⁶ as :func:`keep_threshold` rounds it; a ``ValueError`` where ``bits`` cannot decide it."""
    fewest = field_bits(p)
    if bits not in FIELD_BITS or bits < fewest:
        raise ValueError(f"p={p!r} is not decided by {bits!r}-bit fields; valid bits: {fewest} "
                         f"(field_bits(p)) or more, of {', '.join(map(str, FIELD_BITS))}")
    return round(p * 2**16) >> (16 - bits)


def packed_keep(words: torch.Tensor, n: int, p: float, bits: int) -> torch.Tensor:
    """``True`` (kept) or ``False`` for ``n`` values: value ``j`` reads bits ``j·bits`` to ``j·bits + bits − 1``
    of the words (least significant first, word after word) as an unsigned integer ``u`` and is kept when
    ``u ≥ p · 2**bits`` (:func:`field_threshold`; ``bits`` at least :func:`field_bits` of ``p``)."""
    return packed_fields(words, n, bits) >= field_threshold(p, bits)


def packed_fields(words: torch.Tensor, n: int, bits: int) -> torch.Tensor:
    """The first ``n`` unsigned ``bits``-bit fields of ``words`` (int64), least significant first."""
    j = torch.arange(n, device=words.device)
    per_word = 64 // bits
    return (words[j // per_word] >> ((j % per_word) * bits)) & (2**bits - 1)


def _keep(shape, p: float, device=None, generator=None) -> torch.Tensor:
    """The boolean mask of :func:`dropout_mask` (``True``: kept), from the same random words."""
    n = 1
    for size in shape:
        n *= size
    return random_words(n, device, generator).view(torch.int16)[:n].view(shape) >= keep_threshold(p)


class FastDropout(torch.nn.Module):
    """Drop-in replacement for ``nn.Dropout(p)`` with a cheap mask on the CPU (see the module docstring)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p={p!r} must be in [0, 1)")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        # x · keep (x or x·0) then · 1/(1 − p) in x's dtype: the bits of x · dropout_mask(...) in two passes
        # instead of four (the mask's cast and scaling, then the product); the mask read as 0/1 bytes, since
        # a product with a bool tensor first widens it to x's dtype (1.9x slower)
        scale = torch.tensor(1.0 / (1.0 - self.p), dtype=x.dtype)
        return (x * _keep(x.shape, self.p, device=x.device).view(torch.uint8)).mul_(scale)

    def extra_repr(self) -> str:
        return f"p={self.p}"
