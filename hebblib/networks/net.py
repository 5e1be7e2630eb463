"""``HebbianNet``: a stack of blocks whose flattened output feeds ``Dropout(0.5) → Linear(F, 10)``.

Protocol (spec nimmo-thesis §3.3): the blocks learn without labels (each Hebbian layer accumulates its
update during a training-mode forward; :meth:`HebbianNet.apply_updates` applies them all at once), then
they are frozen and only the linear head is trained by backprop on :meth:`HebbianNet.features`.
"""
from __future__ import annotations

import torch
from torch import nn

from ..dropout import FastDropout
from ..layers import HebbianConv2d, HebbianLinear
from ..weights import count_parameters

HEBBIAN_TYPES = (HebbianConv2d, HebbianLinear)
HEAD_INITS = ("softhebb", "default")
# fc weight init of SoftHebb and Nimmo's models: 0.1105 · U[0, 1) (= 5/sqrt(2048); spec §1.21).
SOFTHEBB_HEAD_SCALE = 0.11048543456039805
# Images the architectures are built for unless told otherwise: CIFAR-10's 3 × 32 × 32. Every build function
# takes ``input_shape`` (C, H, W), e.g. (1, 28, 28) for Fashion-MNIST: the first layer's input channels come
# from C, and the head's size from one forward pass (spatial sizes are never written into a network).
INPUT_SHAPE = (3, 32, 32)


def input_channels(input_shape) -> int:
    """The channel count C of ``input_shape`` = (C, H, W), three positive ints; else a ``ValueError``."""
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                   for v in shape):
        raise ValueError(f"input_shape must be (channels, height, width), three ints > 0, got {input_shape!r}")
    return shape[0]


class HebbianNet(nn.Module):
    """Feature blocks (``stages``) + ``Dropout(dropout) → Linear(num_features, num_classes)``.

    ``features(x)`` is the flattened output of the last block, ``forward(x)`` the class scores.
    ``num_features`` is found by one forward pass in eval mode (no Hebbian update) at construction.
    """

    def __init__(self, stages, *, num_classes: int = 10, dropout: float = 0.5, head_init: str = "softhebb",
                 input_shape=INPUT_SHAPE, architecture: str = "custom", generator: torch.Generator | None = None):
        super().__init__()
        if head_init not in HEAD_INITS:
            raise ValueError(f"unknown head_init {head_init!r}; valid choices: {', '.join(map(repr, HEAD_INITS))}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.stages = nn.ModuleList(stages)
        self.architecture = architecture
        input_channels(input_shape)  # three positive ints, else a ValueError naming the value
        self.input_shape = tuple(input_shape)
        self.num_features = self._count_features()
        self.dropout = FastDropout(dropout)
        self.classifier = nn.Linear(self.num_features, num_classes)
        if head_init == "softhebb":
            with torch.no_grad():
                self.classifier.weight.uniform_(0.0, SOFTHEBB_HEAD_SCALE, generator=generator)

    @torch.no_grad()
    def _count_features(self) -> int:
        was_training = self.training
        self.eval()
        try:
            out = self.features(torch.zeros(2, *self.input_shape))
        finally:
            self.train(was_training)
        return out.shape[1]

    # ----- forward -------------------------------------------------------------------------------
    def features(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """The flattened output of the last block (or of block ``upto``, counting from 0)."""
        stages = self.stages if upto is None else self.stages[: upto + 1]
        for stage in stages:
            x = stage(x)
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(x)))

    # ----- Hebbian layers ------------------------------------------------------------------------
    def hebbian_layers(self) -> dict[str, nn.Module]:
        """The Hebbian layers by name (``conv1``, ``conv2.depthwise``, ``res1.expand``, ...), in forward order."""
        return {m.name: m for m in self.modules() if isinstance(m, HEBBIAN_TYPES)}

    def stage_of(self, layer_name: str) -> int:
        """Index of the block that holds the Hebbian layer ``layer_name``."""
        for i, stage in enumerate(self.stages):
            if any(isinstance(m, HEBBIAN_TYPES) and m.name == layer_name for m in stage.modules()):
                return i
        raise ValueError(f"no Hebbian layer {layer_name!r}; valid names: {', '.join(self.hebbian_layers())}")

    @torch.no_grad()
    def apply_updates(self) -> None:
        """``W += lr · ΔW`` in every plastic Hebbian layer (all at once, from the same forward pass)."""
        for layer in self.hebbian_layers().values():
            if layer.plastic:
                layer.apply_update()

    def set_plastic(self, which=True) -> None:
        """``True``/``False`` for all Hebbian layers, or an iterable of names: only those learn."""
        layers = self.hebbian_layers()
        if isinstance(which, bool):
            chosen = set(layers) if which else set()
        else:
            chosen = set(which)
            unknown = chosen - set(layers)
            if unknown:
                raise ValueError(f"unknown Hebbian layer(s) {sorted(unknown)}; valid names: {', '.join(layers)}")
        for name, layer in layers.items():
            layer.plastic = name in chosen

    def check_finite(self) -> None:
        """Raise :class:`hebblib.HebbianDivergenceError` if any Hebbian layer's weights diverged."""
        for layer in self.hebbian_layers().values():
            layer.check_finite()

    def feature_parameters(self):
        return [p for name, p in self.named_parameters() if not name.startswith("classifier.")]

    def num_parameters(self) -> int:
        """Trainable parameters: conv weights plus the linear head (BN layers have none, affine=False)."""
        return count_parameters(self)

    def extra_repr(self) -> str:
        return f"architecture={self.architecture!r}, num_features={self.num_features}"
