"""Dropout whose mask is cheap to draw on the CPU.

``torch.nn.Dropout`` on the CPU draws one Bernoulli sample per element, about 40 ms for a 64 × 24,576
batch of features on one core: most of the classifier phase's time. Here the mask comes from random 64-bit
words, read as the fewest bits that decide ``p`` (:func:`field_bits`): ``p`` is rounded to a multiple of
2⁻¹⁶ (exact for 0.5), and where it is a multiple of 2⁻ᵐ with ``m`` < 16 (one bit for 0.5, two for 0.25 or
0.75), value ``j`` reads the ``j``-th ``m``-bit unsigned field ``u`` of the words and is kept when
``u ≥ p · 2ᵐ`` (:func:`packed_keep`); else (``p`` = 0.2, say) it reads the ``j``-th 16-bit integer ``r``
(four per word, uniform on [−2¹⁵, 2¹⁵)) and is kept when ``r ≥ −2¹⁵ + round(p · 2¹⁶)``. Then

    y = x · keep / (1 − p)

computed as one product with a mask of 0 and 1/(1 − p) (the same bits as the product with ``keep`` and
then with the scale: either way ``x / (1 − p)`` is rounded once). The ``m``-bit fields are looked up byte by
byte in a table of the mask's values (:func:`dropout_mask`): at ``p`` = 0.5 one random word decides 64
values, 16x fewer draws of torch's Mersenne Twister than four per word, and the dropout of a 64 × 24,576
half-precision batch to fp32 takes 1.8 instead of 7.6 ms on a 2-core AVX2 CPU
(``benchmarks/bench_probe_parts.py``). On other devices (where ``F.dropout`` is a fused kernel)
and in ``eval()`` mode it does what ``nn.Dropout`` does.

Through commit f97bf58 every ``p`` read 16-bit integers (``FastDropout(p, bits=16)`` and
``dropout_mask(..., bits=16)`` still do): the same law, other draws, so a probe run of the same seed now ends
with other numbers than the runs made before (``benchmarks/probe_mask_agreement.py``: 1-bit and 16-bit masks
train the ``soft`` head equally well, 75.86 ± 0.25 % and 75.86 ± 0.34 % over 7 heads). The compiled probe
(``hebblib.classifier``, ``compile=True``) draws the same masks in one compiled pass with the gather and the
widening.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

_WORD_BOUND = 2**63 - 1


def dropout_mask(shape, p: float, *, device=None, dtype=torch.float32, generator=None,
                 bits: int | None = None) -> torch.Tensor:
    """A mask of ``0`` (probability ≈ ``p``) and ``1 / (1 − p)`` (rounded to ``dtype``), of the given shape,
    decided by ``bits`` random bits per value (default :func:`field_bits` of ``p``; 16: the 16-bit integers
    read for every ``p`` through commit f97bf58)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability p={p!r} must be in [0, 1)")
    bits = _checked_bits(p, bits)
    n = 1
    for size in shape:
        n *= size
    if bits == 16:
        keep = random_words(n, device, generator).view(torch.int16)[:n] >= keep_threshold(p)
        return keep.to(dtype).mul_(1.0 / (1.0 - p)).view(shape)
    # each random byte holds 8 / bits values: their mask values, looked up in a table of its 256 readings
    # (one index_select of rows instead of unpacking the fields, comparing them and casting the booleans)
    words = packed_words(n, bits, device, generator)
    table = _mask_table(p, bits, dtype, words.device)
    return table.index_select(0, words.view(torch.uint8).long()).view(-1)[:n].view(shape)


@functools.cache
def _mask_table(p: float, bits: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Row ``b``: the mask values of the ``8 / bits`` fields of the byte ``b``, least significant first."""
    fields = (torch.arange(256).unsqueeze(1) >> (torch.arange(8 // bits) * bits)) & (2**bits - 1)
    keep = fields >= field_threshold(p, bits)
    return (keep.to(torch.float64) / (1.0 - p)).to(dtype=dtype, device=device)


def _checked_bits(p: float, bits: int | None) -> int:
    """``bits`` (None: :func:`field_bits` of ``p``), or a ``ValueError`` where it is no int that decides ``p``."""
    if bits is None:
        return field_bits(p)
    fewest = field_bits(p)
    if not isinstance(bits, int) or isinstance(bits, bool) or not _decides(p, bits):
        raise ValueError(f"bits={bits!r} cannot decide dropout p={p!r}; valid bits: None (the fewest, {fewest}) or "
                         f"{', '.join(str(b) for b in FIELD_BITS if b >= fewest)}")
    return bits


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


def _decides(p: float, bits) -> bool:
    """Whether ``bits``-bit fields decide ``p``: a width of :data:`FIELD_BITS`, at least :func:`field_bits` of it."""
    return bits in FIELD_BITS and bits >= field_bits(p)


def field_threshold(p: float, bits: int) -> int:
    """What a ``bits``-bit unsigned field must reach to keep its value: ``p · 2**bits``, with ``p`` rounded to
    a multiple of 2⁻¹⁶ as :func:`keep_threshold` rounds it; a ``ValueError`` where ``bits`` cannot decide it."""
    if not _decides(p, bits):
        fewest = field_bits(p)
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


class FastDropout(torch.nn.Module):
    """Drop-in replacement for ``nn.Dropout(p)`` with a cheap mask on the CPU (see the module docstring).
    ``bits``: random bits per value (default the fewest that decide ``p``; 16: the masks drawn through commit
    f97bf58)."""

    def __init__(self, p: float = 0.5, bits: int | None = None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p={p!r} must be in [0, 1)")
        _checked_bits(p, bits)
        self.p, self.bits = p, bits

    @property
    def mask_bits(self) -> int:
        """The random bits that decide each mask value on the CPU: ``bits``, or the fewest that decide ``p``."""
        return _checked_bits(self.p, self.bits)

    def forward(self, x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``x`` dropped out, in ``dtype`` (default ``x``'s): a half-precision ``x`` with ``dtype=torch.float32``
        is widened and masked in one product (the bits of ``x.float()`` dropped out)."""
        dtype = x.dtype if dtype is None else dtype
        if not self.training or self.p == 0.0:
            return x.to(dtype)
        if x.device.type != "cpu":
            return F.dropout(x.to(dtype), self.p, training=True)
        mask = dropout_mask(x.shape, self.p, device=x.device, dtype=dtype, bits=self.bits)
        return torch.mul(x, mask)  # fp32 · fp32 mask, or half · fp32 mask computed in fp32: one rounding

    def extra_repr(self) -> str:
        return f"p={self.p}" + ("" if self.bits is None else f", bits={self.bits}")


def dropout_mask_record(layer: FastDropout, device) -> str:
    """How ``layer`` draws its masks on ``device``, for a run's record: ``'1 random bit a value'`` (or more) on the
    CPU (``'16 random bits a value'``: the masks drawn through commit f97bf58), ``'torch'`` elsewhere."""
    if torch.device(device).type != "cpu":
        return "torch"
    bits = layer.mask_bits
    return f"{bits} random bit{'s' if bits > 1 else ''} a value"
