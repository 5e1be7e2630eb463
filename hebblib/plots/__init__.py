"""Figures of the course: every function takes tensors (any device) or layers and returns a
matplotlib ``Figure``; none calls ``plt.show()``.

* ``filters``: :func:`plot_filters`, :func:`plot_image_grid`, :func:`plot_kernel`;
* ``training``: :class:`LiveCurves` (updates in place in a notebook), :func:`plot_curves`;
* ``competition``: :func:`plot_competition`, :func:`plot_radius`, :func:`plot_weight_histogram`,
  :func:`plot_ltp_ltd`;
* ``receptive_fields``: :func:`pga_receptive_fields`, :func:`plot_receptive_fields`,
  :func:`receptive_field_size`, :func:`reconstruct_receptive_fields`;
* ``embedding``: :func:`plot_embedding` (UMAP or PCA);
* ``style``: sizes and colours shared by all of them.

The numbers behind the competition plots are in :mod:`hebblib.diagnostics`.
"""
from .competition import plot_competition, plot_ltp_ltd, plot_radius, plot_weight_histogram
from .embedding import embed_features, plot_embedding
from .filters import normalize_images, plot_filters, plot_image_grid, plot_kernel
from .receptive_fields import (
    layer_output,
    pga_receptive_fields,
    plot_receptive_fields,
    receptive_field_size,
    reconstruct_receptive_fields,
)
from .training import LiveCurves, curve_series, plot_curves

__all__ = [
    "plot_filters", "plot_image_grid", "plot_kernel", "normalize_images",
    "LiveCurves", "plot_curves", "curve_series",
    "plot_competition", "plot_radius", "plot_weight_histogram", "plot_ltp_ltd",
    "pga_receptive_fields", "plot_receptive_fields", "receptive_field_size", "reconstruct_receptive_fields",
    "layer_output",
    "embed_features", "plot_embedding",
]
