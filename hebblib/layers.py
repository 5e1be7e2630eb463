"""Hebbian layers: ``HebbianConv2d`` and ``HebbianLinear``.

In training mode the forward pass computes the layer's activation ``u`` as an ordinary convolution
would, and also the update it implies:

    y  = competition(u)                      # who may learn, and how much (competitions.py)
    r, s = rule(y, u)                        # the rule's two factors (rules.py)
    ΔW = Σ_{n,p} r · x_patch − (Σ_{n,p} s) · W     # one conv2d_weight call + a reduction (update.py)
    ΔW ← ΔW / max|ΔW|                        # update normalisation (Nimmo; optional)

``ΔW`` accumulates in the buffer ``delta_w`` until it is applied, either directly
(``layer.apply_update()``: ``W += lr · ΔW``) or through ``.grad`` (``layer.hebbian_grad(alpha)``)
so any torch optimiser, schedule, or mixing with a backprop gradient can apply it.
The forward returns ``u``; the network applies the non-linearity and pooling.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from . import competitions as comp
from . import rules as rl
from .distributed import LOCAL
from .errors import HebbianDivergenceError, check_choice, check_number, check_positive
from .presynaptic import check_presynaptic, presynaptic_weights
from .surrogate import surrogate_update
from .surround import SurroundModulation
from .update import (BF16_MIN_FAN_IN, UPDATE_NORMS, bf16_conv2d, bf16_hebbian_term, bf16_matmul, hebbian_term,
                     hebbian_term_broadcast, hebbian_term_from_patches, low_precision_kernel, normalize_update,
                     unfold_patches, weight_matrix)
from .weights import filter_norms, init_weight, lebesgue_transform, normalize_filters, pruning_mask

ACTIVATIONS = ("dot", "cosine", "cosine_per_tap")
COMPETITION_AXES = ("auto", "channels", "space")
LR_SCHEDULES = ("constant", "radius")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
DALE_MODES = (False, True, "abs", "relu")
UPDATE_PATHS = ("direct", "surrogate")


# CPU forward of a layer in training mode in channels-last from this many inputs per filter (in_channels·kh·kw)
# up; measured on 2 cores (in eval mode every groups=1 layer's fp32 forward is channels-last: see _conv)
CHANNELS_LAST_MIN_FAN_IN = 2048
# A frozen layer (feature extraction) forms its bf16 products with the convolution kernel below this fan-in,
# where no Hebbian term shares the patches; above it the patches' matrix product was as fast (soft's conv3)
FROZEN_MATMUL_MIN_FAN_IN = 2048
# A learning layer on the CPU forms its fp32 products from explicit patches from this fan-in up: the forward and
# the Hebbian term, two matrix products sharing one copy of the patches, instead of oneDNN's convolution and its
# weight gradient (soft's conv3, 3,456 inputs, on a 2-core AMD EPYC with AVX2: its update 0.63 → 0.47 s a batch
# in `python -m hebblib bench`, the forward as fast; conv2's 864 inputs gained nothing). The order of the sums
# changes, not the maths; the patches' sums came nearer float64 (docs/performance.md)
FP32_MATMUL_MIN_FAN_IN = 2048
FP32_KERNELS = (None, "conv", "matmul")

def _check_size(name: str, value, minimum: int) -> None:
    """``kernel_size``, ``stride``, ``padding``, ``dilation``: an int >= ``minimum`` or a pair of them."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    ok = len(values) in (1, 2) and all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum
                                       for v in values)
    if not ok or (isinstance(value, (tuple, list)) and len(values) != 2):
        raise ValueError(f"{name} must be an int >= {minimum} (or a pair of them), got {value!r}")


class _Context:
    """What a competition may need beyond ``u``: the padded input and the effective weights."""

    def __init__(self, layer, x_padded, weight, arrange, u=None):
        self.layer, self.x, self.weight, self.arrange, self.u = layer, x_padded, weight, arrange, u
        self._winners = None

    def winners(self):
        """``argmax_o u`` (keepdim) of the activity the competition sees, computed once per step."""
        if self._winners is None:
            self._winners = comp.channel_argmax(self.u)
        return self._winners

    def similarity(self, extra_padding: bool = False):
        """``conv(x, W) / ‖W_o‖`` (seed 000 §3.3.7); ``extra_padding`` pads again, as the original did."""
        x = self.x
        if extra_padding:
            x = F.pad(x, [self.layer.padding[1]] * 2 + [self.layer.padding[0]] * 2)
        s = self.layer._conv(x, self.weight) / (filter_norms(self.weight).view(1, -1, 1, 1) + 1e-10)
        return self.arrange(s)


class _HebbianBase(nn.Module):
    """Shared machinery of the Hebbian layers; see the module docstring."""

    # The dtype of the layer's two large products (the forward convolution and the Hebbian term). float32:
    # the exact engine. bfloat16 (set by :func:`compute_precision`, the ``precision`` setting of a run):
    # both products take bf16 operands and accumulate in fp32, while the weights, ΔW and its decay term,
    # the competition and the rule stay fp32. Grouped layers, the surrogate update and layers with a fan-in
    # below update.BF16_MIN_FAN_IN (the image-facing ones) always compute in fp32.
    compute_dtype = torch.float32
    # True: :func:`compute_precision` leaves this layer's products in float32 whatever dtype it sets (to
    # locate where in a network bf16 costs accuracy: scripts/feature_precision.py --fp32-layers)
    fp32_only = False
    # How the bf16 products are formed: None picks per layer (update.low_precision_kernel), or force
    # 'matmul' (explicit patches, shared by the forward and the update) or 'conv' (the library's convolutions)
    low_precision_kernel = None
    # How the fp32 products are formed: None picks (explicit patches for a learning CPU layer from
    # FP32_MATMUL_MIN_FAN_IN up, else the convolutions), or force 'conv' (conv2d and its weight gradient:
    # the bench's fp32 paths) or 'matmul' (patches, shared by the forward and the update)
    fp32_kernel = None
    # sums over the batch (ΔW, win counts): the identity in one process, over the processes of a data-parallel
    # run (hebblib.distributed)
    reducer = LOCAL

    def _setup(self, out_channels, in_per_group, kernel_size, *, rule, competition, activation,
               competition_over, lr, lr_schedule, radius_power, update_norm, surround, presynaptic,
               dale, weight_norm, lebesgue_p, init, prune_fraction, renormalize, update_via,
               explode_threshold, check_every, name, generator):
        check_choice("activation", activation, ACTIVATIONS)
        check_choice("competition_over", competition_over, COMPETITION_AXES)
        check_choice("lr_schedule", lr_schedule, LR_SCHEDULES)
        check_choice("update_norm", update_norm, UPDATE_NORMS)
        check_choice("dale", dale, DALE_MODES)
        check_choice("update_via", update_via, UPDATE_PATHS)
        check_positive("lr", lr, allow_zero=True)
        if explode_threshold is not None:
            check_positive("explode_threshold", explode_threshold)
        check_number("check_every", check_every, minimum=0, integer=True)
        check_positive("radius_power", radius_power, allow_zero=True)
        if not (isinstance(lebesgue_p, (int, float)) and lebesgue_p >= 1):
            raise ValueError(f"lebesgue_p must be a number >= 1, got {lebesgue_p!r}")
        self.rule = rl.make_rule(rule)
        self.competition = comp.make_competition(competition)
        self.activation, self.lr, self.lr_schedule = activation, float(lr), lr_schedule
        self.radius_power, self.update_norm = float(radius_power), update_norm
        self.dale = "abs" if dale is True else dale
        self.weight_norm, self.lebesgue_p = bool(weight_norm), float(lebesgue_p)
        self.renormalize, self.update_via = bool(renormalize), update_via
        self.explode_threshold, self.check_every = explode_threshold, int(check_every)
        self.name = name
        self.plastic = True
        if presynaptic is not None:
            presynaptic = {"kind": "lp_norm", "dim": "spatial", **dict(presynaptic)}
            check_presynaptic(presynaptic["kind"], presynaptic["dim"])
        self.presynaptic = presynaptic
        self.surround = SurroundModulation(**dict(surround)) if surround is not None else None
        if update_via == "surrogate":
            bad = [n for n, on in ((f"rule {self.rule.name!r} not in {rl.SURROGATE_RULES}",
                                    self.rule.name not in rl.SURROGATE_RULES),
                                   ("activation != 'dot'", activation != "dot"), ("dale", bool(self.dale)),
                                   ("weight_norm", self.weight_norm), ("presynaptic", presynaptic is not None),
                                   ("lebesgue_p != 2", self.lebesgue_p != 2)) if on]
            if bad:
                raise ValueError(f"update_via='surrogate' supports plain Hebb, Instar and Oja on a dot-product "
                                 f"layer only; incompatible settings: {', '.join(bad)}")
        if isinstance(self.rule, rl.Sanger) and getattr(self, "groups", 1) != 1:
            raise ValueError("rule 'sanger' mixes all units, so it needs groups=1")

        weight4d = self._weight4d()
        method = "positive_softhebb" if (self.dale and init == "softhebb") else init
        init_weight(weight4d.data, method, fan_in=in_per_group * kernel_size[0] * kernel_size[1],
                    generator=generator)
        if self.dale:
            weight4d.data.abs_()
        if prune_fraction:
            self.register_buffer("mask", pruning_mask(weight4d.shape, prune_fraction, generator))
            weight4d.data.mul_(self.mask)
        else:
            self.register_buffer("mask", None)
        if self.renormalize:
            weight4d.data.copy_(normalize_filters(weight4d.data))
        self.register_buffer("delta_w", torch.zeros_like(weight4d.data))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self.register_buffer("win_counts", torch.zeros(out_channels))

    # ----- forward ---------------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        """The input's dtype must be the weights' (a float64 input to a float32 layer is an error here, not a
        raw torch error in a convolution, nor a silent down-cast)."""
        if x.dtype != self.weight.dtype:
            raise ValueError(f"{type(self).__name__}{' ' + repr(self.name) if self.name else ''}: input dtype "
                             f"{x.dtype} does not match the layer's weights ({self.weight.dtype}); convert the "
                             f"input (x.to({self.weight.dtype})) or the layer (layer.to({x.dtype}))")

    def effective_weight(self) -> torch.Tensor:
        """The weights the forward pass uses: |W| under Dale, W/‖W‖ with weight_norm, then
        presynaptic competition. The decay term of the update uses these too (as the original)."""
        w = self._weight4d()
        if self.dale:
            w = w.abs()
        if self.weight_norm:
            w = normalize_filters(w)
        if self.presynaptic is not None:
            w = presynaptic_weights(w, self.presynaptic["kind"], self.presynaptic["dim"])
        return w

    def _activation(self, x_padded, weight, patches=None, centred: bool = False):
        w = lebesgue_transform(weight, self.lebesgue_p)
        if self.activation == "dot":
            # mean_o u = (mean_o w)·x: the output minus its channel mean is the product with centred filters
            return self._conv(x_padded, w - w.mean(0, keepdim=True) if centred else w, patches)
        if self.activation == "cosine":  # true cosine: normalise the whole filter
            w = normalize_filters(w)
        else:  # 'cosine_per_tap', as the original code: normalise over input channels at each tap
            w = F.normalize(w, p=2, dim=1)
        return self._conv(x_padded, w, patches) / self._patch_norms(x_padded, w.shape[0])

    def _patch_norms(self, x_padded, out_channels):
        """‖x_patch‖ at every output position (per group), by convolving x² with a kernel of ones."""
        groups = self.groups
        if self._low_precision_kernel(x_padded) is not None:  # groups == 1: sum over channels first (cheaper)
            ones = x_padded.new_ones(1, 1, *self.kernel_size)
            sq = F.conv2d((x_padded * x_padded).sum(1, keepdim=True), ones, stride=self.stride,
                          dilation=self.dilation)
            return (sq + 1e-8).sqrt()
        ones = x_padded.new_ones(groups, x_padded.shape[1] // groups, *self.kernel_size)
        sq = F.conv2d(x_padded * x_padded, ones, stride=self.stride, dilation=self.dilation, groups=groups)
        norms = (sq + 1e-8).sqrt()
        return norms.repeat_interleave(out_channels // groups, dim=1) if groups > 1 else norms

    def _low_precision_kernel(self, x_padded):
        """'matmul' or 'conv' where this layer's products run in ``compute_dtype`` (bf16), or in fp32 from
        explicit patches ('matmul': :meth:`_fp32_kernel`); None for fp32 convolutions."""
        if self.groups != 1 or self.update_via != "direct" or x_padded.dtype != torch.float32:
            return None
        fan_in = self._weight4d()[0].numel()
        if self.compute_dtype == torch.float32:
            return self._fp32_kernel(x_padded, fan_in)
        if fan_in < BF16_MIN_FAN_IN:  # the image-facing layers: fp32 (update.BF16_MIN_FAN_IN)
            return None
        if self.low_precision_kernel is not None:
            return self.low_precision_kernel
        if not (self.training and self.plastic) and fan_in < FROZEN_MATMUL_MIN_FAN_IN:
            return "conv"  # frozen: no update shares the patches (soft's conv2: oneDNN 1.5x less CPU time)
        return low_precision_kernel(x_padded.device.type, fan_in)

    def _fp32_kernel(self, x_padded, fan_in):
        """'matmul' where this layer's fp32 products come from explicit patches, else None."""
        if self.fp32_kernel not in FP32_KERNELS:  # check_choice sorts its choices, which None does not allow
            raise ValueError(f"{self.name}: fp32_kernel={self.fp32_kernel!r}; valid choices: "
                             f"{', '.join(map(repr, FP32_KERNELS))}")
        if self.fp32_kernel is not None:
            return "matmul" if self.fp32_kernel == "matmul" else None
        wide = x_padded.device.type == "cpu" and fan_in >= FP32_MATMUL_MIN_FAN_IN
        return "matmul" if wide and self.training and self.plastic else None

    def _patches(self, x_padded):
        """The input patches in ``compute_dtype`` (N, H', W', kh·kw·C) when the layer forms its products as
        matrix products, else None."""
        if self._low_precision_kernel(x_padded) != "matmul":
            return None
        return unfold_patches(x_padded.to(self.compute_dtype, memory_format=torch.channels_last),
                              self.kernel_size, self.stride, self.dilation)

    def _conv(self, x_padded, weight, patches=None):
        # bf16 products return float32: in the usual layout when the layer learns (one pass that casts and
        # transposes; the competition and the rule then see the fp32 path's layout, while their kernels copy
        # channels-last inputs or mix layouts slowly), else channels-last as computed (a frozen network's
        # activation, pooling and next layer take it as it is: the feature extraction)
        learning = self.training and self.plastic
        if patches is not None:  # (N·H'·W', K) @ (K, out): bf16 with fp32 accumulation, or fp32
            n, h, w_, k = patches.shape
            product = bf16_matmul if patches.dtype == torch.bfloat16 else torch.matmul
            u = product(patches.view(-1, k), weight_matrix(weight).to(patches.dtype).t())
            if not learning:
                return u.float().view(n, h, w_, -1).permute(0, 3, 1, 2)
            out = torch.empty((n, u.shape[1], h, w_), dtype=torch.float32, device=u.device)
            return out.copy_(u.view(n, h, w_, -1).permute(0, 3, 1, 2))
        if self._low_precision_kernel(x_padded) == "conv":  # bf16 convolution, channels-last (oneDNN, cuDNN)
            cl, dtype = torch.channels_last, self.compute_dtype
            u = bf16_conv2d(x_padded.to(dtype, memory_format=cl), weight.to(dtype, memory_format=cl),
                            stride=self.stride, dilation=self.dilation)
            return u.to(torch.float32, memory_format=cl if not learning else torch.contiguous_format)
        inference = not self.training
        if x_padded.device.type == "cpu" and self.groups == 1 and (
                inference or weight[0].numel() >= CHANNELS_LAST_MIN_FAN_IN):
            # oneDNN's channels-last kernel is 15-20 % faster here for wide inputs (SoftHebb's conv3), copies
            # included. In training mode the result goes back to the usual layout; in eval mode (the feature
            # extraction) every layer computes channels-last and its output stays so: the activation, pooling,
            # normalisation and padding that follow keep the layout, the channel mean is a contiguous sum, and
            # no copy is made until the features are flattened (benchmarks/bench_frozen_features.py: soft's
            # trained features 1.13x on a 2-core AVX2 CPU; with the Triangle from centred filters 1.15x)
            cl = torch.channels_last
            u = F.conv2d(x_padded.contiguous(memory_format=cl), weight.contiguous(memory_format=cl),
                         stride=self.stride, dilation=self.dilation)
            return u if inference else u.contiguous()
        return F.conv2d(x_padded, weight, stride=self.stride, dilation=self.dilation, groups=self.groups)

    def _forward4d(self, x_padded, centred: bool = False):
        if centred:
            self._check_centred()
        weight = self.effective_weight()
        patches = self._patches(x_padded)
        u = self._activation(x_padded, weight, patches, centred)
        if self.surround is not None:
            u = self.surround(u)
        if self.training and self.plastic:
            with torch.no_grad():
                self._accumulate_update(x_padded.detach(), u.detach(), weight.detach(), patches)
        return u

    def _centring_obstacles(self) -> list[str]:
        """What stands in the way of ``forward(x, centred=True)`` now (empty: nothing)."""
        groups = getattr(self, "groups", 1)
        return [why for why, on in ((f"activation={self.activation!r}", self.activation != "dot"),
                                    ("surround modulation", self.surround is not None),
                                    (f"groups={groups}", groups != 1),
                                    ("the layer learns in this call", self.training and self.plastic),
                                    ("gradients are enabled", torch.is_grad_enabled())) if on]

    def can_centre(self) -> bool:
        """Whether ``forward(x, centred=True)`` is allowed now: a dot-product layer without surround
        modulation or groups, that does not learn in this call and is not differentiated (the Triangle's
        channel mean is a constant to backprop, the centred filters' mean is not)."""
        return not self._centring_obstacles()

    def _check_centred(self) -> None:
        if bad := self._centring_obstacles():
            raise ValueError(f"{type(self).__name__}{' ' + repr(self.name) if self.name else ''}: centred=True "
                             f"needs a frozen dot-product layer with groups=1, no surround modulation, under "
                             f"torch.no_grad(); here: {', '.join(bad)}")

    # ----- the update ------------------------------------------------------------------------
    def _competition_axis(self):
        if self.competition_over != "auto":
            return self.competition_over
        depthwise = self.groups > 1 and self.groups == self.in_channels == self.out_channels
        return "space" if depthwise else "channels"

    def _arrangement(self, u):
        """Functions moving the competing units to dim 1 and back."""
        n, c = u.shape[:2]
        if self._competition_axis() == "space":
            spatial = u.shape[2:]
            return (lambda t: t.flatten(2).transpose(1, 2),
                    lambda t: t.transpose(1, 2).reshape(n, c, *spatial))
        if self.groups > 1:
            g = self.groups
            return (lambda t: t.reshape(n, g, c // g, *t.shape[2:]).transpose(1, 2),
                    lambda t: t.transpose(1, 2).reshape(n, c, *t.shape[3:]))
        return (lambda t: t), (lambda t: t)

    def _accumulate_update(self, x_padded, u, weight, patches=None):
        arrange, restore = self._arrangement(u)
        arranged = arrange(u)
        self.competition.check(arranged.shape[1])
        ctx = _Context(self, x_padded, weight, arrange, arranged)
        y = restore(self.competition(arranged, ctx))
        if self.update_via == "surrogate":
            delta = surrogate_update(x_padded, self._weight4d(), y, self.rule.name,
                                     self.stride, self.dilation, self.groups)
        else:
            r, s = self.rule(y, u)
            if r.shape[-2:] != u.shape[-2:]:
                delta = hebbian_term_broadcast(x_padded, r, weight.shape)
            elif patches is not None:  # one matrix product (bf16 operands: fp32 accumulation)
                delta = hebbian_term_from_patches(patches, r, weight.shape)
            elif self._low_precision_kernel(x_padded) == "conv":
                dtype, cl = self.compute_dtype, torch.channels_last
                delta = bf16_hebbian_term(x_padded.to(dtype, memory_format=cl), r.to(dtype, memory_format=cl),
                                          weight.shape, self.stride, self.dilation)
            else:
                delta = hebbian_term(x_padded, r, weight.shape, self.stride, self.dilation, self.groups)
            decay = self.rule.decay(y, u, s, weight)
            if decay is not None:
                delta = delta - decay
        wins = None
        if self._competition_axis() == "channels" and self.groups == 1:
            winners = ctx.winners().flatten()  # index_add_ keeps the count on the device (no host sync)
            wins = torch.zeros_like(self.win_counts)
            wins.index_add_(0, winners, torch.ones_like(winners, dtype=wins.dtype))
        # the partial sums of every process added up (the identity in one process) before the normalisation:
        # max|Σ ΔW| is not the max of the partial maxima
        delta, wins = self.reducer.sum(delta, wins)
        self.delta_w += normalize_update(delta, self.update_norm)
        if wins is not None:
            self.win_counts += wins

    def learning_rates(self, lr: float | None = None) -> torch.Tensor:
        """Per-unit learning rates: constant, or SoftHebb's radius rule
        ``lr_o = lr · (|‖W_o‖ − 1| + 1e-10)^power`` (seed 000 §1.9; Journé et al. 2023)."""
        lr = self.lr if lr is None else lr
        weight = self._weight4d()
        if self.lr_schedule == "constant":
            return torch.full((weight.shape[0],), lr, device=weight.device, dtype=weight.dtype)
        distance = (filter_norms(weight.detach(), self.lebesgue_p) - 1).abs()
        return lr * (distance + 1e-10).pow(self.radius_power)

    def radius(self, p: float | None = None) -> torch.Tensor:
        """Each unit's weight norm (p = ``lebesgue_p`` by default); SoftHebb drives it to 1."""
        return filter_norms(self._weight4d().detach(), self.lebesgue_p if p is None else p)

    @torch.no_grad()
    def apply_update(self, lr: float | None = None) -> None:
        """``W ← W + lr_o · ΔW`` directly (no optimiser), then the projections; clears ``delta_w``."""
        rates = self.learning_rates(lr)
        weight = self._weight4d()
        weight.add_(rates.view(-1, 1, 1, 1) * self.delta_w)
        self.delta_w.zero_()
        self.after_step()

    @torch.no_grad()
    def hebbian_grad(self, alpha: float = 1.0) -> None:
        """Write the update into ``weight.grad`` for a torch optimiser (which then *descends* it):

            grad = −α · ΔW_scaled                      (no backprop gradient present)
            grad = (1 − α) · grad_BP − α · ΔW_scaled   (after ``loss.backward()``)

        α = 1 is purely Hebbian, α = 0 purely backprop. ``ΔW_scaled`` carries the per-unit factor of
        the radius schedule, so the optimiser's lr plays the role of ``lr``. Call
        :meth:`after_step` after ``optimizer.step()``.
        """
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        scale = self.learning_rates(1.0).view(-1, 1, 1, 1)
        hebb = -alpha * (scale * self.delta_w).view_as(self.weight)
        self.weight.grad = hebb if self.weight.grad is None else (1 - alpha) * self.weight.grad + hebb
        self.delta_w.zero_()

    @torch.no_grad()
    def after_step(self) -> None:
        """Projections after a weight change (Dale, pruning mask, renormalisation) and the guard
        against NaN or exploding weights."""
        weight = self._weight4d()
        if self.dale == "abs":
            weight.abs_()
        elif self.dale == "relu":
            weight.clamp_(min=0)
        if self.mask is not None:
            weight.mul_(self.mask)
        if self.renormalize:
            weight.copy_(normalize_filters(weight))
        self.num_updates += 1
        self._steps_since_check = getattr(self, "_steps_since_check", 0) + 1
        if self.check_every and self._steps_since_check >= self.check_every:  # no host sync in between
            self._steps_since_check = 0
            self.check_finite()

    def check_finite(self) -> None:
        """Raise :class:`HebbianDivergenceError` naming the layer and step if the weights are
        non-finite or larger than ``explode_threshold``."""
        # one pass and one host sync: the largest |W| is NaN or inf exactly when a weight is (aminmax propagates
        # NaN); isfinite + all, then abs + max, were four passes, a tenth of a compiled soft step on 2 cores
        low, high = torch.aminmax(self.weight.detach())
        peak = float(torch.maximum(high, -low))
        finite = math.isfinite(peak)
        limit = self.explode_threshold
        if not finite or (limit is not None and peak > limit):
            what = "became non-finite (NaN/inf)" if not finite else f"exploded (max |W| = {peak:.3g} > {limit:g})"
            raise HebbianDivergenceError(
                f"layer {self.name or type(self).__name__!r}: weights {what} at update step "
                f"{int(self.num_updates)}; try a smaller lr, update_norm='global_max', or a rule with a "
                f"decay term (instar, oja, softhebb)")

    def reset_statistics(self) -> None:
        self.win_counts.zero_()

    def _common_repr(self) -> str:
        parts = [f"activation={self.activation!r}", f"lr={self.lr:g}"]
        if self.lr_schedule != "constant":
            parts.append(f"lr_schedule={self.lr_schedule!r}, radius_power={self.radius_power:g}")
        parts.append(f"update_norm={self.update_norm!r}")
        for flag in ("dale", "weight_norm", "renormalize"):
            if getattr(self, flag):
                parts.append(f"{flag}={getattr(self, flag)!r}")
        if self.presynaptic is not None:
            parts.append(f"presynaptic={self.presynaptic}")
        if self.lebesgue_p != 2:
            parts.append(f"lebesgue_p={self.lebesgue_p:g}")
        if self.mask is not None:
            parts.append(f"pruned={1 - float(self.mask.mean()):.2f}")
        if self.update_via != "direct":
            parts.append(f"update_via={self.update_via!r}")
        return ", ".join(parts)


class HebbianConv2d(_HebbianBase):
    """A 2-D convolution (no bias) whose weights learn with a local Hebbian rule.

    Example: ``HebbianConv2d(3, 96, 5, padding=2, rule="softhebb", competition={"name": "soft_wta",
    "temperature": 1.0}, lr_schedule="radius", lr=0.08)``.

    Args (beyond ``nn.Conv2d``'s ``in_channels, out_channels, kernel_size, stride, padding, dilation,
    groups, padding_mode``):
        rule: one of :func:`hebblib.available_rules` (a name, ``{"name": ..., **options}`` or a module).
        competition: one of :func:`hebblib.available_competitions`, likewise.
        activation: ``'dot'`` (u = W·x), ``'cosine'`` (u = cos(W, x)) or ``'cosine_per_tap'`` (the
            original code's normalisation over input channels at each tap; in a depthwise layer it
            reduces to sign(W)).
        competition_over: ``'channels'`` (units at one position compete), ``'space'`` (positions of one
            channel compete) or ``'auto'`` (space for depthwise layers).
        lr, lr_schedule (``'constant'``/``'radius'``), radius_power: see :meth:`learning_rates`.
        update_norm: ``'global_max'`` (ΔW / max|ΔW| over the layer), ``'per_filter'`` or ``'none'``.
        surround: ``{"size": 5, "sigma_e": 1.2, "sigma_i": 1.4}`` for DoG lateral inhibition, or None.
        presynaptic: ``{"kind": 'lp_norm'|'softmax'|'linear', "dim": 'spatial'|'input'|'output'|'global'}``.
        dale: True/``'abs'`` or ``'relu'``: non-negative effective weights (Dale's principle).
        weight_norm: use W/‖W‖ in the forward pass. lebesgue_p: Krotov–Hopfield p-norm currents.
        init: ``'softhebb'``, ``'kaiming_uniform'``, ``'normal'``, ``'unit_norm'``.
        prune_fraction: fraction of weights fixed at zero by a random mask (Miconi).
        renormalize: rescale each unit to norm 1 after every update (Miconi).
        update_via: ``'direct'`` or ``'surrogate'`` (autograd on Miconi's surrogate loss).
        explode_threshold: max |W| allowed before training stops with an error (None: no limit).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, padding_mode: str = "zeros", *, rule="instar", competition="hard_wta",
                 activation: str = "dot", competition_over: str = "auto", lr: float = 0.1,
                 lr_schedule: str = "constant", radius_power: float = 0.5, update_norm: str = "global_max",
                 surround=None, presynaptic=None, dale=False, weight_norm: bool = False,
                 lebesgue_p: float = 2.0, init: str = "softhebb", prune_fraction: float = 0.0,
                 renormalize: bool = False, update_via: str = "direct", explode_threshold: float | None = 1e6,
                 check_every: int = 1, name: str | None = None, generator: torch.Generator | None = None):
        super().__init__()
        for arg, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{arg} must be a positive int, got {value!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                             f"divisible by groups ({groups})")
        check_choice("padding_mode", padding_mode, PADDING_MODES)
        for arg, value, minimum in (("kernel_size", kernel_size, 1), ("stride", stride, 1), ("padding", padding, 0),
                                    ("dilation", dilation, 1)):
            _check_size(arg, value, minimum)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation, self.padding_mode = _pair(padding), _pair(dilation), padding_mode
        self.competition_over = competition_over
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self._setup(out_channels, in_channels // groups, self.kernel_size, rule=rule, competition=competition,
                    activation=activation, competition_over=competition_over, lr=lr, lr_schedule=lr_schedule,
                    radius_power=radius_power, update_norm=update_norm, surround=surround,
                    presynaptic=presynaptic, dale=dale, weight_norm=weight_norm, lebesgue_p=lebesgue_p,
                    init=init, prune_fraction=prune_fraction, renormalize=renormalize, update_via=update_via,
                    explode_threshold=explode_threshold, check_every=check_every, name=name,
                    generator=generator)
        if competition_over == "channels" or (competition_over == "auto" and self._competition_axis() == "channels"):
            self.competition.check(out_channels // groups)

    def _weight4d(self):
        return self.weight

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        ph, pw = self.padding
        if ph == 0 and pw == 0:
            return x
        mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
        return F.pad(x, [pw, pw, ph, ph], mode=mode)

    def forward(self, x: torch.Tensor, centred: bool = False) -> torch.Tensor:
        """``u = W ⊛ x`` (and, when the layer learns, its ΔW accumulated). ``centred=True`` returns
        ``u − mean_o u`` (the mean over the output channels at each position, the Triangle's), computed as the
        convolution with the filters minus their mean filter: one pass over u fewer, and no cancellation in
        the subtraction. Only for a frozen layer (:meth:`can_centre`); the rest is a ``ValueError``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects input of shape (N, {self.in_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        self._check_input(x)
        size = [x.shape[d] + 2 * self.padding[d - 2] for d in (2, 3)]
        reach = [self.dilation[d] * (self.kernel_size[d] - 1) + 1 for d in (0, 1)]
        if size[0] < reach[0] or size[1] < reach[1]:
            raise ValueError(f"{type(self).__name__}: the kernel {self.kernel_size} (dilation {self.dilation}, so "
                             f"{reach[0]}x{reach[1]} pixels) is larger than the padded input, {size[0]}x{size[1]} "
                             f"(an input of {x.shape[2]}x{x.shape[3]} with padding {self.padding}); use larger "
                             f"images, more padding or a smaller kernel")
        return self._forward4d(self.pad(x), centred)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
             f"padding={self.padding}")
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ", " + self._common_repr()


class HebbianLinear(_HebbianBase):
    """A fully connected layer (no bias) whose weights learn with a local Hebbian rule; the same
    rules, competitions and options as :class:`HebbianConv2d` (surround excepted), for inputs (N, in)."""

    def __init__(self, in_features: int, out_features: int, *, rule="instar", competition="hard_wta",
                 activation: str = "dot", lr: float = 0.1, lr_schedule: str = "constant",
                 radius_power: float = 0.5, update_norm: str = "global_max", presynaptic=None, dale=False,
                 weight_norm: bool = False, lebesgue_p: float = 2.0, init: str = "softhebb",
                 prune_fraction: float = 0.0, renormalize: bool = False, update_via: str = "direct",
                 explode_threshold: float | None = 1e6, check_every: int = 1, name: str | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        for arg, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{arg} must be a positive int, got {value!r}")
        self.in_features, self.out_features = in_features, out_features
        self.in_channels, self.out_channels, self.groups = in_features, out_features, 1
        self.kernel_size, self.stride, self.padding, self.dilation = (1, 1), (1, 1), (0, 0), (1, 1)
        self.competition_over = "channels"
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self._setup(out_features, in_features, (1, 1), rule=rule, competition=competition, activation=activation,
                    competition_over="channels", lr=lr, lr_schedule=lr_schedule, radius_power=radius_power,
                    update_norm=update_norm, surround=None, presynaptic=presynaptic, dale=dale,
                    weight_norm=weight_norm, lebesgue_p=lebesgue_p, init=init, prune_fraction=prune_fraction,
                    renormalize=renormalize, update_via=update_via, explode_threshold=explode_threshold,
                    check_every=check_every, name=name, generator=generator)
        self.competition.check(out_features)

    def _weight4d(self):
        return self.weight.view(self.out_features, self.in_features, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"HebbianLinear expects input of shape (N, {self.in_features}), got {tuple(x.shape)}")
        self._check_input(x)
        return self._forward4d(x[:, :, None, None]).flatten(1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " + self._common_repr()


def hebbian_modules(model: nn.Module) -> list:
    """Every Hebbian layer in ``model`` (itself included)."""
    return [m for m in model.modules() if isinstance(m, _HebbianBase)]


class compute_precision:  # noqa: N801 - used as a context manager, like torch.no_grad
    """Run the Hebbian layers of ``model`` with their large products in ``dtype`` (``torch.bfloat16`` or
    ``torch.float32``) for the duration of a ``with`` block, then restore each layer's setting:

        with compute_precision(model, torch.bfloat16):
            model.features(x)

    The weights and ``delta_w`` stay float32 (see ``_HebbianBase.compute_dtype``); a layer whose ``fp32_only``
    is set keeps float32 products."""

    def __init__(self, model: nn.Module, dtype: torch.dtype):
        if dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"compute dtype must be torch.float32 or torch.bfloat16, got {dtype!r}")
        self.layers, self.dtype, self.saved = hebbian_modules(model), dtype, None

    def __enter__(self):
        self.saved = [layer.__dict__.get("compute_dtype") for layer in self.layers]
        for layer in self.layers:
            layer.compute_dtype = torch.float32 if layer.fp32_only else self.dtype
        return self

    def __exit__(self, *exc):
        for layer, saved in zip(self.layers, self.saved):
            if saved is None:
                layer.__dict__.pop("compute_dtype", None)  # back to the class default (float32)
            else:
                layer.compute_dtype = saved
        return False


def one_step_updates(model: nn.Module, forward, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> dict:
    """``{layer name: ΔW}``: what every Hebbian layer of ``model`` accumulates from the one batch ``x`` passed
    through ``forward`` (``model.features`` or a compiled version of it) in ``dtype``; the accumulators are
    cleared afterwards and the weights are not touched, so steps of several paths can be compared from one
    state."""
    with torch.no_grad(), compute_precision(model, dtype):
        forward(x)
    delta = {name: layer.delta_w.clone() for name, layer in model.hebbian_layers().items()}
    for layer in model.hebbian_layers().values():
        layer.delta_w.zero_()
    return delta
