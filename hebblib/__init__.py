"""hebblib: Hebbian learning in convolutional neural networks, for teaching and research.

The pieces, each in its own small module:

* ``rules``: how a unit's weights change (Hebb, Instar, Oja, Sanger, SoftHebb, BCM, anti-Hebb);
* ``competitions``: which units learn (hard/soft WTA, top-k, Krotov ranking, temporal, statistical,
  adaptive thresholds);
* ``layers``: ``HebbianConv2d`` and ``HebbianLinear``, into which any rule and competition plug;
* ``surrogate``: Miconi's Hebbian-update-as-gradient formulation;
* ``data``: CIFAR-10, ZCA whitening, device-resident datasets, toy data.
"""
from .activations import Triangle
from .competitions import available_competitions
from .errors import HebbianDivergenceError
from .layers import HebbianConv2d, HebbianLinear
from .rules import available_rules
from .runtime import describe_device, get_device, is_quick, quick_or, seed_everything
from .surround import dog_kernel

__version__ = "0.1.0"

__all__ = [
    "HebbianConv2d", "HebbianLinear", "Triangle", "HebbianDivergenceError",
    "available_rules", "available_competitions", "dog_kernel",
    "get_device", "seed_everything", "is_quick", "quick_or", "describe_device",
]

# Networks, presets and the training pipeline (imported after __version__: training reads it).
from .networks import HebbianNet, available_architectures, build_network  # noqa: E402
from .presets import get_preset, list_presets  # noqa: E402
from .training import reproduce, run_preset, train_hebbian  # noqa: E402
from .contrastive import ContrastiveConv2d, ContrastiveLinear, run_contrastive, train_contrastive  # noqa: E402

__all__ += [
    "HebbianNet", "available_architectures", "build_network", "get_preset", "list_presets",
    "reproduce", "run_preset", "train_hebbian",
]
