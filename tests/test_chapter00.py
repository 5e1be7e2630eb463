"""Chapter 0 (hebblib.chapters.ch00_setup): the ZCA explorer against a direct eigendecomposition of the
pixel covariance, the exercise's reference solution, and the demo figure."""
import matplotlib

matplotlib.use("Agg")
import pytest
import torch

from hebblib.chapters import ch00_setup as ch0


def _direct_whitening(images: torch.Tensor, shown: int, eps: float) -> torch.Tensor:
    x = images.double().flatten(1) / 255
    centred = x - x.mean(0)
    covariance = centred.T @ centred / (len(x) - 1)
    return (centred[:shown] @ ch0.zca_matrix(covariance, eps)).float().view(shown, *images.shape[1:])


@pytest.mark.parametrize("n_images", [20, 100])  # fewer images than the 48 pixels (Gram path), and more
@pytest.mark.parametrize("eps", [1e-5, 1e-3, 1e-1])
def test_explorer_whitens_like_the_zca_matrix_of_the_covariance(n_images, eps):
    images = torch.randint(0, 256, (n_images, 3, 4, 4), generator=torch.Generator().manual_seed(n_images))
    explorer = ch0.WhiteningExplorer(images, n_show=5)
    expected = _direct_whitening(images, 5, eps)
    assert torch.allclose(explorer.whiten(eps), expected, rtol=1e-4, atol=1e-4 * expected.abs().max())
    x = images.double().flatten(1) / 255
    direct = torch.linalg.eigvalsh(torch.cov(x.T))
    assert explorer.eigenvalues.shape == (48,)
    assert torch.allclose(explorer.eigenvalues, direct.clamp_min(0), atol=1e-9)
    assert torch.allclose(explorer.covariance(), torch.cov(x.T), atol=1e-9)


def test_whitened_covariance_is_close_to_the_identity_on_the_data_span():
    images = torch.randint(0, 256, (200, 3, 4, 4), generator=torch.Generator().manual_seed(1))
    explorer = ch0.WhiteningExplorer(images)
    white = explorer.covariance(1e-8)
    assert torch.allclose(white, torch.eye(48, dtype=white.dtype), atol=1e-4)


def test_zca_matrix_solution_and_demo_numbers():
    covariance = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    W = ch0.zca_matrix(covariance, 0.0)
    assert torch.allclose(W @ covariance @ W, torch.eye(2, dtype=torch.float64), atol=1e-12)
    images = torch.randint(0, 256, (40, 3, 32, 32), generator=torch.Generator().manual_seed(2))
    fig, numbers = ch0.whitening_demo(ch0.WhiteningExplorer(images), eps=1e-3)
    assert numbers["off_diagonal_after"] < numbers["off_diagonal_before"]
    assert len(fig.axes) > 0


def test_explorer_rejects_a_single_image_and_a_bad_eps():
    with pytest.raises(ValueError, match="at least 2 images, got 1"):
        ch0.WhiteningExplorer(torch.zeros(1, 3, 4, 4))
    explorer = ch0.WhiteningExplorer(torch.randint(0, 256, (10, 3, 32, 32)))
    with pytest.raises(ValueError, match="eps must be > 0, got 0"):
        explorer.show(0.0)


def test_random_conv_features_are_pool_of_triangle_of_conv():
    model = ch0.RandomConvFeatures(out_channels=8, seed=3)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model.pool(model.act(model.conv(x))).flatten(1)
        assert torch.allclose(model.features(x), expected)
    assert model.features(x).shape == (4, 8 * 16 * 16)


def test_baseline_probes_report_both_baselines(capsys):
    from hebblib.data import DeviceDataset

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (60, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.arange(60) % 10
    train, val, test = (DeviceDataset(images[s], labels[s], "standardize", device="cpu")
                        for s in (slice(0, 40), slice(40, 50), slice(50, 60)))
    results = ch0.baseline_probes(train, val, test, epochs=1)
    assert set(results) == {"raw pixels", "random conv layer"}
    for best, final in results.values():
        assert 0.0 <= best <= 100.0 and 0.0 <= final <= 100.0
    out = capsys.readouterr().out
    assert "raw pixels: test accuracy" in out and "24,576 features" in out
