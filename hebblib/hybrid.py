"""The α-hybrid: end-to-end backprop with the Hebbian layers' own updates mixed into their gradients.

Nimmo's code writes, in every Hebbian layer's ``local_update`` (spec nimmo-thesis §1.0, "Applying the update"),

    weight.grad = (1 − α) · grad_BP − α · ΔW_Hebb          α = 0: backprop;  α = 1: purely Hebbian

and lets the optimiser descend it; the thesis only ever ran α = 1 with a separate Hebbian phase. Here the whole
network trains end to end (the ``hybrid_soft`` / ``hybrid_optimal`` presets, ``supervised.mode = 'hybrid'``),
one step being

    logits = model(x)            # ONE forward, in training mode: every plastic Hebbian layer also accumulates
                                 # its ΔW (its competition and rule, max-normalised) under no_grad
    loss.backward()              # grad_BP of the cross-entropy, for every parameter
    hook.before_step()           # each Hebbian layer: weight.grad ← (1 − α)·grad_BP − α·ΔW   (hebbian_grad)
    optimizer.step()             # Adam, on the mixed gradient (the head: grad_BP alone)
    hook.after_step()            # each Hebbian layer's projections (Dale, pruning mask, renormalisation) and
                                 # its divergence guard (HebbianLayer.after_step)

:func:`hebblib.classifier.train_end_to_end` runs the loop; :class:`HybridHook` is all this module adds. With
α = 0 the gradient is exactly grad_BP (``1·g + (−0)`` is ``g`` bit for bit), so the run is the end-to-end
backprop of the same network. ΔW carries the radius schedule's per-unit factor (``learning_rates(1.0)``), so the
optimiser's lr plays the role of the layers' ``lr``; with Adam a constant factor on a gradient cancels, but the
*relative* size of the two terms does not: each step's ΔW is max-normalised (its largest entry is 1), grad_BP is
whatever the loss makes it. :class:`HybridHook` records the mean ‖grad_BP‖ and ‖ΔW‖ per layer and epoch
(``grad_norms`` in each epoch's record), so the balance that a given α strikes can be read off a run.
"""
from __future__ import annotations

import torch

from .errors import check_number


class HybridHook:
    """The hook :func:`hebblib.classifier.train_end_to_end` calls around each optimiser step of an α-hybrid run.

    ``model``: a :class:`hebblib.HebbianNet` (its Hebbian layers are made plastic, so that a training-mode
    forward computes their ΔW); ``alpha`` in [0, 1]. ``before_step()`` mixes the gradients,
    ``after_step()`` applies each layer's projections, ``epoch_summary()`` returns (and resets) the epoch's
    mean gradient norms: ``{"alpha": α, "grad_norms": {layer: {"backprop": ..., "hebbian": ...}}}``."""

    def __init__(self, model, alpha: float):
        check_number("alpha", alpha, minimum=0, maximum=1)
        self.alpha = float(alpha)
        self.layers = model.hebbian_layers()
        if not self.layers:
            raise ValueError(f"the α-hybrid needs Hebbian layers; {type(model).__name__} "
                             f"({getattr(model, 'architecture', '?')}) has none")
        model.set_plastic(True)
        self._sums = {name: torch.zeros(2, device=layer.weight.device) for name, layer in self.layers.items()}
        self._steps = 0

    @torch.no_grad()
    def before_step(self) -> None:
        """Each Hebbian layer: ``weight.grad = (1 − α)·grad_BP − α·ΔW`` (:meth:`hebbian_grad`), ΔW cleared."""
        for name, layer in self.layers.items():
            grad = layer.weight.grad
            sums = self._sums[name]  # norms summed on the device: no host sync per step
            if grad is not None:
                sums[0] += grad.norm()
            sums[1] += layer.delta_w.norm()
            layer.hebbian_grad(self.alpha)
        self._steps += 1

    def after_step(self) -> None:
        for layer in self.layers.values():
            layer.after_step()

    def epoch_summary(self) -> dict:
        steps = max(self._steps, 1)
        norms = {name: dict(zip(("backprop", "hebbian"), (sums / steps).tolist()))
                 for name, sums in self._sums.items()}
        for sums in self._sums.values():
            sums.zero_()
        self._steps = 0
        return {"alpha": self.alpha, "grad_norms": norms}
