"""Do the learned features separate the classes? A 2-D embedding coloured by class
(spec nimmo-thesis §5.5, Figs 19, 20, 29; purely qualitative, as in the thesis).

Each feature dimension is standardised, ``z = (f − mean) / std`` (std 0 → 1; scikit-learn's
``StandardScaler``), then projected to 2-D by

* PCA: the top two principal directions (``torch.pca_lowrank``): fast, linear, deterministic per seed;
* UMAP (``umap-learn``; n_neighbors 15, min_dist 0.1 as the thesis): non-linear, shows clusters,
  but slow (numba compiles it on first use, once per machine with
  :func:`cache_umap_compilation`) and imported only when asked for.
"""
from __future__ import annotations

import matplotlib
import numpy as np
import torch

from . import style

METHODS = ("umap", "pca")


def standardize(features: torch.Tensor) -> torch.Tensor:
    """``(f − mean) / std`` per column (population std; constant columns are only centred)."""
    mean = features.mean(0, keepdim=True)
    std = features.std(0, unbiased=False, keepdim=True)
    return (features - mean) / torch.where(std > 0, std, torch.ones_like(std))


def _pca_2d(z: torch.Tensor, seed: int) -> torch.Tensor:
    q = min(2, *z.shape)
    with torch.random.fork_rng(devices=[]):  # pca_lowrank draws random numbers: keep them seeded
        torch.manual_seed(seed)
        _, _, v = torch.pca_lowrank(z, q=q, center=False, niter=4)
    coords = z @ v[:, :q]
    if q < 2:  # a single feature or a single sample: nothing to spread along the second axis
        coords = torch.cat([coords, coords.new_zeros(coords.shape[0], 2 - q)], dim=1)
    return coords


UMAP_MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.spectral", "umap.distances", "umap.sparse")
_umap_cache_enabled = False


def cache_umap_compilation() -> int:
    """Keep umap-learn's compiled code on disk. umap compiles its numba functions on first use (about 30 s on a
    CPU) and, as it does not ask numba to cache them, again in every new process (every notebook kernel);
    with numba's cache switched on for them (next to umap's sources, or in the user's cache folder where those
    are read-only), later processes load the compiled code in about a second. Returns how many functions it
    switched on (0 after the first call, or when umap is not the real package)."""
    global _umap_cache_enabled
    if _umap_cache_enabled:
        return 0
    _umap_cache_enabled = True
    import importlib

    try:
        from numba.core.registry import CPUDispatcher
        modules = [importlib.import_module(name) for name in UMAP_MODULES]
    except ImportError:  # a stand-in for umap (tests), or an umap without these modules: nothing to cache
        return 0
    count = 0
    for module in modules:
        for function in vars(module).values():
            if isinstance(function, CPUDispatcher) and type(function._cache).__name__ == "NullCache":
                try:
                    function.enable_caching()
                    count += 1
                except (RuntimeError, OSError):  # no cache location: it compiles as before
                    pass
    return count


def _umap_2d(z: torch.Tensor, seed: int, epochs: int | None = None) -> torch.Tensor:
    try:
        import umap
    except ImportError as error:  # pragma: no cover - umap-learn is a dependency
        raise ImportError("method='umap' needs umap-learn (pip install umap-learn); "
                          "method='pca' needs nothing extra") from error
    if z.shape[0] < 3:
        raise ValueError(f"UMAP needs at least 3 samples, got {z.shape[0]}; use method='pca'")
    cache_umap_compilation()
    reducer = umap.UMAP(n_neighbors=min(15, z.shape[0] - 1), min_dist=0.1, n_components=2,
                        random_state=seed, n_jobs=1, **({"n_epochs": epochs} if epochs else {}))
    return torch.as_tensor(reducer.fit_transform(z.numpy()), dtype=torch.float64)


def embed_features(features, method: str = "umap", n: int | None = 2000, seed: int = 0, epochs: int | None = None):
    """Standardise and project to 2-D. Returns ``(coords (m, 2), indices)``: the ``m = min(n, N)``
    samples used (a seeded random subset when N > n; all of them when n is None). ``epochs``: UMAP's
    optimisation epochs (default umap's: 500 below 10,000 samples); fewer draw faster, a little rougher."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid choices: {', '.join(map(repr, METHODS))}")
    features = style.to_cpu(features).double()
    if features.dim() < 2 or features.shape[0] == 0:
        raise ValueError(f"features must be (N, ...) with N >= 1, got shape {tuple(features.shape)}")
    features = features.flatten(1)
    total = features.shape[0]
    if n is not None and n < total:
        indices = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n].sort().values
    else:
        indices = torch.arange(total)
    z = standardize(features[indices])
    coords = _pca_2d(z, seed) if method == "pca" else _umap_2d(z, seed, epochs)
    return coords, indices


def plot_embedding(features, labels, method: str = "umap", n: int | None = 2000, class_names=None,
                   seed: int = 0, title: str | None = None, ax=None):
    """Scatter of a 2-D embedding of ``features`` (N, ...) coloured by ``labels`` (N,) (tab10).

    ``n`` samples at most are embedded (UMAP on the whole test set takes minutes); ``class_names``
    labels the legend (e.g. ``hebblib.data.CIFAR10_CLASSES``).
    """
    features = style.to_cpu(features)
    labels = style.to_cpu(labels).long().flatten()
    if features.dim() == 0 or labels.shape[0] != features.shape[0]:
        raise ValueError(f"features {tuple(features.shape)} and labels {tuple(labels.shape)} "
                         f"must have one row each")
    coords, indices = embed_features(features, method, n, seed)
    dims = features[0].numel()
    labels = labels[indices].numpy()
    coords = coords.numpy()
    fig, (panel,) = style.panels(1, ax=ax, width=style.PANEL[0] + 1.5)
    classes = np.unique(labels)
    cmap = matplotlib.colormaps[style.CLASS_CMAP if len(classes) <= 10 else "tab20"]
    for i, cls in enumerate(classes):
        chosen = labels == cls
        name = class_names[cls] if class_names is not None and 0 <= cls < len(class_names) else str(cls)
        panel.scatter(coords[chosen, 0], coords[chosen, 1], s=4, alpha=0.5, color=cmap(i % cmap.N), label=name)
    panel.set(xticks=[], yticks=[], xlabel=f"{method.upper()} 1", ylabel=f"{method.upper()} 2")
    panel.legend(fontsize=7, markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    panel.set_title(title or f"{method.upper()} of {len(labels)} samples ({dims}-D features)")
    return fig
