import pytest
import torch

from hebblib.dropout import FastDropout, dropout_mask


@pytest.mark.parametrize("p", [0.5, 0.2, 0.9])
def test_mask_drops_a_fraction_p_and_rescales_the_rest(p):
    torch.manual_seed(0)
    mask = dropout_mask((400, 1000), p)
    dropped = (mask == 0).float().mean().item()
    assert abs(dropped - p) < 0.005
    assert torch.allclose(mask[mask != 0], torch.full((), 1 / (1 - p)))
    assert abs(mask.mean().item() - 1.0) < 0.02  # E[mask] = 1: no change of scale on average


def test_mask_bits_are_independent_across_positions():
    # neighbouring entries come from the same random word: they must still be uncorrelated
    torch.manual_seed(1)
    keep = (dropout_mask((200_000,), 0.5) > 0).float()
    for lag in (1, 2, 3, 4, 5):
        corr = torch.corrcoef(torch.stack([keep[:-lag], keep[lag:]]))[0, 1].item()
        assert abs(corr) < 0.01, (lag, corr)


def test_fast_dropout_matches_nn_dropout_semantics():
    torch.manual_seed(0)
    layer = FastDropout(0.5)
    x = torch.randn(64, 300, requires_grad=True)
    y = layer(x)
    kept = y != 0
    assert torch.allclose(y[kept], 2 * x[kept])
    y.sum().backward()
    assert torch.equal(x.grad, kept.float() * 2)  # the gradient goes through the kept units only
    layer.eval()
    assert layer(x) is x
    assert FastDropout(0.0)(x) is x


def test_fast_dropout_is_reproducible_under_a_seed():
    layer = FastDropout(0.5)
    x = torch.ones(8, 50)
    torch.manual_seed(3)
    a = layer(x)
    torch.manual_seed(3)
    assert torch.equal(a, layer(x))


@pytest.mark.parametrize("p", [-0.1, 1.0, 2])
def test_bad_probability_names_the_value(p):
    with pytest.raises(ValueError, match=repr(p)):
        FastDropout(p)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_fast_dropout_is_x_times_the_mask_bit_for_bit(dtype):
    """The fast product (mask read as 0/1 bytes, then the scale) has the bits of x · dropout_mask(...) from
    the same random words, in x's dtype, and keeps x's dtype."""
    x = (torch.randn(64, 1000) * 3).to(dtype)
    torch.manual_seed(7)
    y = FastDropout(0.25)(x)
    torch.manual_seed(7)
    expected = x * dropout_mask(x.shape, 0.25, dtype=dtype)
    assert y.dtype == dtype and torch.equal(y, expected)


@pytest.mark.parametrize("p, bits", [(0.5, 1), (0.25, 2), (0.75, 2), (0.125, 4), (0.5 + 2**-8, 8), (0.2, 16),
                                     (0.0, 1)])
def test_field_bits_is_the_fewest_bits_that_decide_p(p, bits):
    from hebblib.dropout import field_bits

    assert field_bits(p) == bits


@pytest.mark.parametrize("bits, p", [(1, 0.5), (2, 0.25), (2, 0.75), (4, 0.3125), (8, 0.5 + 2**-8)])
def test_packed_mask_reads_the_words_bit_by_bit(bits, p):
    """An independent reading: the words' bits unpacked by numpy (least significant first, word after word),
    grouped into fields of ``bits``, each field's value summed from its bits."""
    import numpy as np

    from hebblib.dropout import packed_keep, packed_words

    n = 1000
    torch.manual_seed(5)
    words = packed_words(n, bits)
    assert words.numel() == -(-n * bits // 64)
    stream = np.unpackbits(words.numpy().view(np.uint8), bitorder="little")[: n * bits].reshape(n, bits)
    values = (stream * (2 ** np.arange(bits))).sum(1)
    expected = torch.from_numpy(values >= p * 2**bits)
    assert torch.equal(packed_keep(words, n, p, bits), expected)


@pytest.mark.parametrize("p", [0.5, 0.25, 0.75])
def test_packed_mask_drops_a_fraction_p_without_correlation(p):
    from hebblib.dropout import field_bits, packed_keep, packed_words

    torch.manual_seed(2)
    bits = field_bits(p)
    keep = packed_keep(packed_words(400_000, bits), 400_000, p, bits).float()
    assert abs((1 - keep.mean().item()) - p) < 0.004
    for lag in (1, 2, 3, 4, 5, 32, 64):  # neighbours in a word and across words
        corr = torch.corrcoef(torch.stack([keep[:-lag], keep[lag:]]))[0, 1].item()
        assert abs(corr) < 0.01, (lag, corr)


@pytest.mark.parametrize("p, bits", [(0.2, 1), (0.2, 8), (0.5, 3)])
def test_packed_mask_refuses_bits_that_cannot_decide_p(p, bits):
    from hebblib.dropout import field_bits, packed_keep

    with pytest.raises(ValueError, match=rf"p={p!r} is not decided by {bits}-bit fields; valid bits: "
                                         rf"{field_bits(p)} \(field_bits\(p\)\) or more"):
        packed_keep(torch.zeros(4, dtype=torch.int64), 10, p, bits)


@pytest.mark.parametrize("p", [0.5, 0.25, 0.2, 0.1])
def test_the_fewest_bits_are_always_accepted_and_sixteen_round_p_as_the_eager_mask(p):
    """field_bits(p) bits decide p (0.2 needs 16, rounded to a multiple of 2⁻¹⁶ as keep_threshold rounds it):
    the unsigned 16-bit threshold is the signed one shifted by 2¹⁵."""
    from hebblib.dropout import field_bits, field_threshold, keep_threshold

    assert field_threshold(p, field_bits(p)) == round(p * 2 ** field_bits(p)) or field_bits(p) == 16
    assert field_threshold(p, 16) == keep_threshold(p) + 2**15


def _numpy_mask(words: torch.Tensor, n: int, p: float, bits: int):
    """An independent reading of the words: numpy's bits, least significant first, word after word; fields of
    ``bits`` summed from their bits (16: the signed 16-bit integers); kept at ``p · 2**bits`` and above."""
    import numpy as np

    if bits == 16:
        values = words.numpy().view(np.int16)[:n].astype(np.int64) + 2**15
    else:
        stream = np.unpackbits(words.numpy().view(np.uint8), bitorder="little")[: n * bits].reshape(n, bits)
        values = (stream * (2 ** np.arange(bits))).sum(1)
    return torch.from_numpy(values >= round(p * 2**16) / 2 ** (16 - bits)).float() / (1 - p)


@pytest.mark.parametrize("p, bits, default", [(0.5, 1, True), (0.25, 2, True), (0.75, 2, True),
                                              (0.5 + 2**-8, 8, True), (0.2, 16, True), (0.5, 16, False),
                                              (0.5, 4, False)])
def test_the_mask_reads_the_fewest_bits_by_default_and_the_bits_asked_for(p, bits, default):
    """dropout_mask and FastDropout (default: field_bits(p) bits a value, 1 at p = 0.5; bits=16: the 16-bit
    integers of every mask drawn before) against numpy's reading of the same random words."""
    from hebblib.dropout import packed_words

    n, asked = 3 * 1000, None if default else bits
    torch.manual_seed(4)
    words = packed_words(n, bits)
    torch.manual_seed(4)
    mask = dropout_mask((3, 1000), p, bits=asked)
    assert torch.equal(mask.view(-1), _numpy_mask(words, n, p, bits))
    x = torch.randn(3, 1000)
    torch.manual_seed(4)
    assert torch.equal(FastDropout(p, bits=asked)(x), x * mask)
    after = torch.randint(0, 2**30, (8,))  # the global generator after the dropout's draw ...
    torch.manual_seed(4)
    packed_words(n, bits)
    assert torch.equal(after, torch.randint(0, 2**30, (8,)))  # ... is where packed_words leaves it


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_half_precision_batch_is_widened_and_dropped_out_in_one_product(dtype):
    x = (torch.randn(64, 999) * 3).to(dtype)
    for p in (0.5, 0.2):
        torch.manual_seed(6)
        y = FastDropout(p)(x, torch.float32)
        torch.manual_seed(6)
        assert y.dtype == torch.float32 and torch.equal(y, FastDropout(p)(x.float()))
    layer = FastDropout(0.5).eval()
    assert torch.equal(layer(x, torch.float32), x.float())


@pytest.mark.parametrize("p, bits", [(0.5, 3), (0.2, 8), (0.5, True), (0.5, 2.0), (0.5, "16")])
def test_bits_that_cannot_decide_p_are_refused_by_name(p, bits):
    with pytest.raises(ValueError, match=rf"bits={bits!r} cannot decide dropout p={p!r}; valid bits: None"):
        FastDropout(p, bits=bits)
    with pytest.raises(ValueError, match=rf"bits={bits!r} cannot decide"):
        dropout_mask((4, 4), p, bits=bits)


def test_the_run_record_names_how_the_masks_were_drawn():
    from hebblib.dropout import dropout_mask_record

    assert dropout_mask_record(FastDropout(0.5), "cpu") == "1 random bit a value"
    assert dropout_mask_record(FastDropout(0.5, bits=16), "cpu") == "16 random bits a value"
    assert dropout_mask_record(FastDropout(0.2), torch.device("cpu")) == "16 random bits a value"
    assert dropout_mask_record(FastDropout(0.5), "cuda") == "torch"
    assert (FastDropout(0.5).mask_bits, FastDropout(0.25).mask_bits, FastDropout(0.5, bits=4).mask_bits) == (1, 2, 4)
