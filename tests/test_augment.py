import pytest
import torch
import torch.nn.functional as F

from hebblib.augment import random_crop, random_flip


def test_random_crop_cuts_each_image_at_its_own_offset():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6)
    generator = torch.Generator().manual_seed(0)
    out = random_crop(x, padding=2, generator=generator)
    assert out.shape == x.shape
    padded = F.pad(x, [2] * 4, mode="reflect")
    for n in range(2):  # every output is some 6×6 window of its own padded image, the same for all channels
        windows = [(i, j) for i in range(5) for j in range(5) if torch.equal(out[n], padded[n, :, i:i + 6, j:j + 6])]
        assert len(windows) == 1


def test_random_crop_offsets_cover_the_whole_range_and_zero_padding_is_identity():
    x = torch.randn(400, 1, 4, 4)
    out = random_crop(x, padding=1, generator=torch.Generator().manual_seed(1))
    unchanged = sum(torch.equal(out[n], x[n]) for n in range(400))
    assert 20 < unchanged < 90  # the centred window has probability 1/9
    assert random_crop(x, padding=0) is x


def test_random_flip_mirrors_about_half():
    x = torch.randn(1000, 2, 3, 5)
    out = random_flip(x, generator=torch.Generator().manual_seed(2))
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert bool((mirrored | kept).all()) and 400 < int(mirrored.sum()) < 600


@pytest.mark.parametrize("bad", [-1, 1.5])
def test_bad_padding_names_the_value(bad):
    with pytest.raises(ValueError, match=repr(bad)):
        random_crop(torch.zeros(1, 1, 4, 4), padding=bad)


def test_wrong_shape_names_it():
    with pytest.raises(ValueError, match=r"\(3, 4, 4\)"):
        random_crop(torch.zeros(3, 4, 4))
