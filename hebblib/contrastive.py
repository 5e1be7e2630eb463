"""Contrastive neuron-centric Hebbian learning (Lunelli 2024, seed 003; spec miconi-lunelli-manzali Part 2).

Not the classical free/clamped contrastive Hebbian learning. Every hidden layer has its own supervised,
batch-contrastive loss on its own output, and the *local* gradient of that loss is the layer's Hebbian
update; backprop trains only per-neuron learning-rate multipliers C. The pieces, each beside its equation:

    Y_norm = Y / (‖Y‖₂ + ε), ε = 1e-8, per sample          (4.3)   Y = φ(X W), φ = tanh (or ReLU)
    S      = Y_norm Y_normᵀ − I                            (4.4)   B × B cosine similarities
    M_pos  = [t_i = t_j, i ≠ j],  M_neg = [t_i ≠ t_j]       (4.5, 4.6)
    L      = mean_{B²}( M_pos ⊙ (1 − S) + M_neg ⊙ |S| )     (4.7–4.9) same class → 1, other class → 0
    ΔW     = −∂L/∂W, derived by hand in contrastive_grad    (4.10–4.22)
    output layer: ΔW = (T − softmax(X W))ᵀ X                (4.28)  Hebbian descent with cross-entropy
    W_t    = constrain(W_{t−1} + η · C ⊙ M_{t−1}),  M_t = β M_{t−1} + ΔW_t     (4.30–4.33, §4.3, §4.3.1)
    C      = C_post ⊗ C_pre (linear) or C_post ⊗ C_pre ⊗ C_height ⊗ C_width (conv), all initialised to 1

The single-forward-pass scheme (§4.3): at step t the pending update of step t−1 is added to the weights
*inside* the autograd graph (:meth:`begin_step`), the batch goes forward once, the cross-entropy of the
logits is backpropagated into the C's only (AdamW 0.03, weight decay 0.003), and then each layer commits
its weights and computes its next update from the input and pre-activation it stored (:meth:`local_update`).
A training step, as :func:`train_contrastive` runs it::

    optimizer.zero_grad()          # before the weight change, or its graph is lost (§4.3)
    net.begin_step()               # W_t = constrain(W_{t-1} + η C ⊙ M)   (graph to C)
    loss = cross_entropy(net(x), y); loss.backward(); optimizer.step()
    net.local_updates(y)           # commit W_t; ΔW_t from the stored X, U; M ← β M + ΔW_t

Decisions on the spec's open points (§2.12; also in docs/contrastive.md):

1. Conv network (Fig. 6.9): SoftHebb's stack without BatchNorm and Triangle: 5×5 (pad 2) → MaxPool 4/2/1 →
   3×3 (pad 1) → MaxPool 4/2/1 → 3×3 (pad 1) → AvgPool 2/2, reflect padding as SoftHebb, channels 96·F^(l−1)
   (96/384/1536 at F = 4, 96/96/96 at F = 1). Each hidden FC layer divides its input size by 4, capped at
   1024: 24576 → 1024 → 256 → 10 at F = 4, 1536 → 384 → 96 → 10 at F = 1 (``fc_reduction``, ``fc_max``
   change it). Dropout (0.3/0.1/0 for F = 4/2/1) once, between the flattened conv output and the first FC.
2. MLP: four hidden layers of 2000 tanh units, then the 10-way output layer (as Forward-Forward's net).
3. Momentum β = 0.9 (not given); the momentum buffer (not the raw ΔW) enters the C-graph, as §4.3.2 writes
   ``Y = (W + C_i C_j M) X``; "without momentum" is β = 0.
4. L2 normalisation per output neuron (each row of a linear weight to unit norm), applied inside the graph
   (C's gradient sees it), after every update and once at construction. Conv clipping to [−10, 10] likewise.
5. Sign: descent on the local loss, ΔW = −∂L/∂W (the code's ``return -grad``), added with +η.
6. The printed code's tanh derivative applies tanh twice; here φ'(u) = 1 − y² (y = tanh u), which matches
   autograd. Label smoothing follows Eqs. 4.26–4.27 (the printed code only rescales the masks). It changes
   the hidden layers' masks only; the output layer's targets stay one-hot.
7. The conv "output" is the activated conv map before pooling, flattened over C·H·W per image.
8. Every layer, the output layer included, has its C's. A layer learns from the input it actually received,
   so after dropout; the local rule uses the layer's own input and pre-activation only.
9. Validation: 5,000 training images, stratified and seeded (hebblib's protocol), test accuracy reported at
   the best-validation epoch (the thesis keeps the best-validation weights) and at the last epoch.
10. Data (not stated in the thesis): per-channel standardisation, no augmentation. Weights start from
    PyTorch's default init (the thesis extends ``nn.Linear``/``nn.Conv2d``); no bias anywhere.
11. Backprop baselines (same networks, ``learning="backprop"``): SGD with momentum 0.9, lr 0.001, batch 32,
    the same epochs and dropout, no normalisation or clipping.
"""
from __future__ import annotations

import copy
import datetime
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .errors import check_choice, choice_error

EPS = 1e-8  # (4.3)
ACTIVATIONS = ("tanh", "relu")
RULES = ("contrastive", "hebbian_descent")
CONSTRAINTS = ("l2", "clip", "none")
PADDING_MODES = ("reflect", "zeros")
CLIP_VALUE = 10.0  # conv weights clipped to [−10, 10] (§6.2)


def _check_number(name, value, low, high=None, *, low_open=False, high_open=True) -> None:
    """``ValueError`` unless ``value`` is a real number in the interval (bounds in the message)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high))
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open or high is None else "]"
        raise ValueError(f"{name} must be a number in {lo}{low}, {'inf' if high is None else high}{hi}, "
                         f"got {value!r}")


def _check_labels(labels: torch.Tensor, batch: int) -> None:
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.dtype.is_floating_point:
        raise ValueError(f"labels must be a 1-D integer tensor of class indices, got "
                         f"{type(labels).__name__} {getattr(labels, 'dtype', '')} "
                         f"{tuple(labels.shape) if isinstance(labels, torch.Tensor) else ''}".rstrip())
    if labels.shape[0] != batch:
        raise ValueError(f"got {labels.shape[0]} labels for a batch of {batch} samples; they must match")
    if batch < 2:
        raise ValueError(f"the contrastive rule compares the samples of a batch, so it needs at least 2; got {batch}")


# ----- the loss and its local gradient ---------------------------------------------------------------
def contrastive_masks(labels: torch.Tensor, label_smoothing: float = 0.0, dtype=torch.float32):
    """``(M_pos, M_neg)``, B × B, zero on the diagonal (Eqs. 4.5–4.6). With label smoothing α (Eqs. 4.26–4.27):
    ``M' = (1 − α) M + α/(B − 1) · (1 − I)``."""
    _check_number("label_smoothing", label_smoothing, 0.0, 1.0)
    batch = labels.shape[0]
    same = labels.view(-1, 1) == labels.view(1, -1)
    off_diagonal = ~torch.eye(batch, dtype=torch.bool, device=labels.device)
    positive, negative = (same & off_diagonal).to(dtype), (~same).to(dtype)
    if label_smoothing:
        spread = off_diagonal.to(dtype) * (label_smoothing / (batch - 1))
        positive = (1 - label_smoothing) * positive + spread
        negative = (1 - label_smoothing) * negative + spread
    return positive, negative


def cosine_similarities(y: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """``S = Y_norm Y_normᵀ − I`` of the flattened samples (Eqs. 4.3–4.4)."""
    flat = y.flatten(1)
    y_norm = flat / (flat.norm(dim=1, keepdim=True) + eps)
    return y_norm @ y_norm.T - torch.eye(flat.shape[0], dtype=flat.dtype, device=flat.device)


def contrastive_loss(y: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0,
                     eps: float = EPS) -> torch.Tensor:
    """Eq. 4.9 as a scalar: the mean over the B² entries of ``M_pos ⊙ (1 − S) + M_neg ⊙ |S|``, where ``y`` is a
    layer's (activated) output, one row per sample (conv maps are flattened over C·H·W)."""
    _check_labels(labels, y.shape[0])
    s = cosine_similarities(y, eps)
    positive, negative = contrastive_masks(labels, label_smoothing, s.dtype)
    return (positive * (1 - s) + negative * s.abs()).sum() / s.numel()


def contrastive_grad(y: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0,
                     eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """``(∂L/∂Y, L)`` of :func:`contrastive_loss`, derived by hand (Eqs. 4.10–4.19); same shape as ``y``."""
    _check_labels(labels, y.shape[0])
    flat = y.flatten(1)
    batch = flat.shape[0]
    norms = flat.norm(dim=1, keepdim=True)
    y_norm = flat / (norms + eps)                                               # (4.3)
    s = y_norm @ y_norm.T - torch.eye(batch, dtype=flat.dtype, device=flat.device)  # (4.4)
    positive, negative = contrastive_masks(labels, label_smoothing, s.dtype)
    loss = (positive * (1 - s) + negative * s.abs()).sum() / s.numel()
    grad_s = (negative * s.sign() - positive) / s.numel()                      # (4.11–4.13), mean over B²
    grad_y_norm = (grad_s + grad_s.T) @ y_norm                                  # (4.14): S is symmetric in Y_norm
    # (4.15–4.19) through Y / (‖Y‖ + ε): g/(‖Y‖+ε) − Y_norm (Y_norm·g)/‖Y‖  (→ (I − Y_n Y_nᵀ) g / ‖Y‖ as ε → 0)
    radial = (y_norm * grad_y_norm).sum(dim=1, keepdim=True) / norms.clamp_min(1e-30)
    grad_y = grad_y_norm / (norms + eps) - y_norm * radial
    return grad_y.view_as(y), loss


def activation_grad(grad_y: torch.Tensor, y: torch.Tensor, u: torch.Tensor, activation: str) -> torch.Tensor:
    """∂L/∂U from ∂L/∂Y (Eq. 4.20): tanh' = 1 − y² (not 1 − tanh²(y), the printed code's slip); ReLU' = [u > 0]."""
    check_choice("activation", activation, ACTIVATIONS)
    if activation == "tanh":
        return grad_y * (1 - y * y)
    return grad_y * (u > 0).to(grad_y.dtype)


def activate(u: torch.Tensor, activation: str) -> torch.Tensor:
    check_choice("activation", activation, ACTIVATIONS)
    return torch.tanh(u) if activation == "tanh" else torch.relu(u)


def contrastive_signal(u, labels, activation: str = "tanh", label_smoothing: float = 0.0):
    """``(−∂L/∂U, L)``: the post-synaptic factor of the update, computed from the layer's own pre-activation
    ``u`` and the batch's labels only (local). ΔW is this factor correlated with the input (Eqs. 4.21–4.22)."""
    y = activate(u, activation)
    grad_y, loss = contrastive_grad(y, labels, label_smoothing)
    return -activation_grad(grad_y, y, u, activation), loss


def contrastive_delta_linear(x, u, labels, activation: str = "tanh", label_smoothing: float = 0.0):
    """``(ΔW, L)`` of a hidden linear layer ``U = X Wᵀ`` (W: out × in): ``ΔW = −(∂L/∂U)ᵀ X`` (Eqs. 4.21–4.22)."""
    signal, loss = contrastive_signal(u, labels, activation, label_smoothing)
    return signal.T @ x, loss


def contrastive_delta_conv(x_padded, u, labels, weight_shape, stride=1, dilation=1, activation: str = "tanh",
                           label_smoothing: float = 0.0):
    """``(ΔW, L)`` of a conv layer ``U = conv(X_padded, W)``: the input correlated with −∂L/∂U, by
    ``torch.nn.grad.conv2d_weight`` (§4.1.2; the padding is already in ``x_padded``)."""
    signal, loss = contrastive_signal(u, labels, activation, label_smoothing)
    return torch.nn.grad.conv2d_weight(x_padded, weight_shape, signal, stride, 0, dilation), loss


def hebbian_descent_signal(u, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """``(T − softmax(U), CE)``: the output layer's post-synaptic factor (Eq. 4.28, μ = 0), T one-hot."""
    if u.dim() != 2 or labels.dim() != 1 or labels.shape[0] != u.shape[0]:
        raise ValueError(f"the output layer needs logits B × classes and B labels, got {tuple(u.shape)} and "
                         f"{tuple(labels.shape)}")
    targets = F.one_hot(labels, u.shape[1]).to(u.dtype)
    return targets - u.softmax(dim=1), F.cross_entropy(u, labels)


def hebbian_descent_delta(x, u, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ΔW, CE)`` of the output layer (Eq. 4.28): ``ΔW = (T − softmax(U))ᵀ X``, summed over the batch (the
    thesis code; equal to −∂(Σ cross-entropy)/∂W)."""
    signal, loss = hebbian_descent_signal(u, labels)
    return signal.T @ x, loss


class _PendingUpdate(torch.autograd.Function):
    """``constrain(W + η · C ⊙ M)``, C the outer product of ``rates`` (vector k along weight dim k), and its
    gradient to the rate vectors only, with one weight-sized temporary each way. Autograd of the plain
    expression would materialise C, C ⊙ M, the sum and the normalisation one by one, a pass over the weights
    and a new tensor each (about half the step time of the 4 × 2000 MLP on a CPU). Checked against autograd of
    the plain expression by tests/test_contrastive.py."""

    @staticmethod
    def forward(ctx, weight, momentum, eta, constraint, clip_value, *rates):
        shape = [1] * weight.dim()

        def along(k, c):
            return c.view(*shape[:k], -1, *shape[k + 1:])

        v = momentum * along(0, rates[0])
        for k, c in enumerate(rates[1:], start=1):
            v.mul_(along(k, c))
        v.mul_(eta).add_(weight)
        saved = None
        if constraint == "l2":
            norms = v.flatten(1).norm(dim=1).view(-1, *shape[1:])
            v.div_(norms + EPS)
            saved = norms
        elif constraint == "clip":
            saved = (v >= -clip_value) & (v <= clip_value)  # where clamp passes the gradient
            v.clamp_(-clip_value, clip_value)
        ctx.constraint, ctx.eta = constraint, eta
        ctx.save_for_backward(v, momentum, saved if saved is not None else v.new_empty(0), *rates)
        return v

    @staticmethod
    def backward(ctx, grad):
        out, momentum, saved, *rates = ctx.saved_tensors
        if ctx.constraint == "l2":  # through v / (‖v‖ + ε): g/(‖v‖+ε) − out (out·g)/‖v‖
            rows = out.shape[0]
            dot = torch.bmm(out.reshape(rows, 1, -1), grad.reshape(rows, -1, 1)).view_as(saved)
            grad_v = grad / (saved + EPS)
            grad_v.addcmul_(out, dot / saved.clamp_min(1e-30), value=-1.0)
        elif ctx.constraint == "clip":
            grad_v = grad * saved
        else:
            grad_v = grad.clone()
        grad_v.mul_(momentum).mul_(ctx.eta)  # ∂/∂C of η C ⊙ M
        letters = "abcdefgh"[:out.dim()]
        grads = []
        for k in range(len(rates)):
            others = [j for j in range(len(rates)) if j != k]
            spec = f"{letters}," + ",".join(letters[j] for j in others) + f"->{letters[k]}"
            needed = ctx.needs_input_grad[5 + k]
            grads.append(torch.einsum(spec, grad_v, *(rates[j] for j in others)) if needed else None)
        return (None, None, None, None, None, *grads)


# ----- layers ----------------------------------------------------------------------------------------
class _NeuronCentricLayer(nn.Module):
    """Weights changed only by the local rule (buffers); per-neuron rate multipliers C (the parameters)."""

    def _setup(self, weight: torch.Tensor, rates: dict, *, rule, activation, eta, momentum, label_smoothing,
               constraint, clip_value, name):
        check_choice("rule", rule, RULES)
        check_choice("activation", activation, ACTIVATIONS)
        check_choice("constraint", constraint, CONSTRAINTS)
        _check_number("eta", eta, 0.0, low_open=True, high=None)
        _check_number("momentum", momentum, 0.0, 1.0)
        _check_number("label_smoothing", label_smoothing, 0.0, 1.0)
        _check_number("clip_value", clip_value, 0.0, low_open=True, high=None)
        if rule == "hebbian_descent" and label_smoothing:
            raise ValueError(f"label_smoothing={label_smoothing!r} applies to the contrastive rule's masks; "
                             f"the 'hebbian_descent' output layer takes none (use 0)")
        self.rule, self.activation, self.eta, self.momentum = rule, activation, float(eta), float(momentum)
        self.label_smoothing, self.constraint, self.clip_value = float(label_smoothing), constraint, float(clip_value)
        self.name = name
        self.register_buffer("weight", self._constrain(weight))
        self.register_buffer("momentum_buffer", torch.zeros_like(weight))  # M (= ΔW when β = 0)
        self.register_buffer("pending", torch.zeros((), dtype=torch.bool))  # M holds an update not applied yet
        for key, size in rates.items():
            setattr(self, key, nn.Parameter(torch.ones(size)))
        self._has_pending = False
        self._live = self._x = self._u = None
        self.register_load_state_dict_post_hook(lambda module, _: module._sync_pending())

    def _sync_pending(self) -> None:
        self._has_pending = bool(self.pending)
        self._live = self._x = self._u = None

    def _constrain(self, w: torch.Tensor) -> torch.Tensor:
        if self.constraint == "l2":  # each output neuron's weights on the unit sphere
            return w / (w.flatten(1).norm(dim=1).view(-1, *([1] * (w.dim() - 1))) + EPS)
        if self.constraint == "clip":
            return w.clamp(-self.clip_value, self.clip_value)
        return w

    def rate_vectors(self) -> list:
        """The C vectors in the order of the weight's dimensions (``c_post`` first)."""
        raise NotImplementedError

    def rate_multipliers(self) -> torch.Tensor:
        """C as a tensor of the weight's shape (Eqs. 4.31, 4.33): the outer product of :meth:`rate_vectors`."""
        vectors = self.rate_vectors()
        c = vectors[0].view(-1, *([1] * (len(vectors) - 1)))
        for k, v in enumerate(vectors[1:], start=1):
            c = c * v.view(*([1] * k), -1, *([1] * (len(vectors) - 1 - k)))
        return c

    def begin_step(self) -> None:
        """Single forward pass (§4.3): ``W ← constrain(W + η · C ⊙ M)`` for the coming forward, in the graph,
        so the loss of this batch reaches C. Nothing pending (the first step): the committed weights."""
        self._live = None
        if self._has_pending:
            self._live = _PendingUpdate.apply(self.weight, self.momentum_buffer, self.eta, self.constraint,
                                              self.clip_value, *self.rate_vectors())

    def current_weight(self) -> torch.Tensor:
        """The weights the forward uses: those of :meth:`begin_step` until :meth:`local_update` commits them."""
        return self._live if self._live is not None else self.weight

    def _record(self, x: torch.Tensor, u: torch.Tensor) -> None:
        if self.training:
            self._x, self._u = x.detach(), u.detach()

    @torch.no_grad()
    def local_update(self, labels: torch.Tensor) -> torch.Tensor:
        """Commit the weights of this step; compute ΔW from the stored input and pre-activation of the last
        training-mode forward and the batch's labels; ``M ← β M + ΔW``. Returns the layer's local loss."""
        if self._x is None:
            raise RuntimeError(f"layer {self.name!r}: local_update needs a training-mode forward first")
        _check_labels(labels, self._u.shape[0])
        if self._live is not None:
            self.weight = self._live.detach()  # the buffer now holds W_t (no copy)
        loss = self._accumulate(self._x, self._u, labels)
        self.pending.fill_(True)
        self._has_pending = True
        self._live = self._x = self._u = None
        return loss

    def _settings(self) -> str:
        smooth = f", label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
        act = f", activation={self.activation!r}" if self.rule == "contrastive" else ""
        return (f"rule={self.rule!r}{act}, eta={self.eta}, momentum={self.momentum}{smooth}, "
                f"constraint={self.constraint!r}" + (f", name={self.name!r}" if self.name else ""))


def _default_weight(shape, generator) -> torch.Tensor:
    """PyTorch's ``nn.Linear``/``nn.Conv2d`` initialisation (Kaiming-uniform, a = √5)."""
    weight = torch.empty(shape)
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    return weight


class ContrastiveLinear(_NeuronCentricLayer):
    """A linear layer that learns by its local rule: ``U = X Wᵀ`` (no bias), output ``φ(U)`` for the
    contrastive rule or the logits ``U`` for the output layer (``rule='hebbian_descent'``).

    Parameters (what backprop trains): ``c_pre`` (in_features) and ``c_post`` (out_features), initialised to 1,
    ``C = c_post ⊗ c_pre`` (Eq. 4.31). Buffers: ``weight``, ``momentum_buffer``, ``pending``.
    ``constraint``: 'l2' (default; unit-norm rows), 'clip' (to ±``clip_value``), 'none'.
    """

    def __init__(self, in_features: int, out_features: int, *, rule: str = "contrastive", activation: str = "tanh",
                 eta: float = 1e-3, momentum: float = 0.9, label_smoothing: float = 0.0, constraint: str = "l2",
                 clip_value: float = CLIP_VALUE, name: str | None = None, generator: torch.Generator | None = None):
        super().__init__()
        for key, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key} must be an int >= 1, got {value!r}")
        self.in_features, self.out_features = in_features, out_features
        self._setup(_default_weight((out_features, in_features), generator),
                    {"c_pre": in_features, "c_post": out_features}, rule=rule, activation=activation, eta=eta,
                    momentum=momentum, label_smoothing=label_smoothing, constraint=constraint,
                    clip_value=clip_value, name=name)

    def rate_vectors(self) -> list:
        return [self.c_post, self.c_pre]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"layer {self.name!r} expects input B × {self.in_features}, got {tuple(x.shape)}")
        u = x @ self.current_weight().T
        self._record(x, u)
        return u if self.rule == "hebbian_descent" else activate(u, self.activation)

    def _accumulate(self, x, u, labels):
        """``M ← β M + signalᵀ X`` in one fused call (no ΔW-sized temporary)."""
        if self.rule == "hebbian_descent":
            signal, loss = hebbian_descent_signal(u, labels)
        else:
            signal, loss = contrastive_signal(u, labels, self.activation, self.label_smoothing)
        self.momentum_buffer.addmm_(signal.T, x, beta=self.momentum)
        return loss

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, " + self._settings()


class ContrastiveConv2d(_NeuronCentricLayer):
    """A conv layer (no bias, groups 1) that learns by the contrastive rule on its activated output map.

    Parameters: ``c_pre`` (in_channels), ``c_post`` (out_channels), ``c_height`` and ``c_width`` (the kernel's),
    ``C = c_post ⊗ c_pre ⊗ c_height ⊗ c_width`` (Eq. 4.33, the "keeping the dimensionality" option).
    The input is padded explicitly (``padding_mode`` 'reflect' as SoftHebb, or 'zeros'), so the update is the
    exact gradient of the forward actually run. ``constraint`` defaults to 'clip' (to ±10, §6.2).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1, padding: int = 0,
                 dilation: int = 1, padding_mode: str = "reflect", activation: str = "tanh", eta: float = 1e-4,
                 momentum: float = 0.9, label_smoothing: float = 0.0, constraint: str = "clip",
                 clip_value: float = CLIP_VALUE, name: str | None = None, generator: torch.Generator | None = None):
        super().__init__()
        for key, value, low in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                                ("kernel_size", kernel_size, 1), ("stride", stride, 1), ("padding", padding, 0),
                                ("dilation", dilation, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{key} must be an int >= {low}, got {value!r}")
        check_choice("padding_mode", padding_mode, PADDING_MODES)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding, self.dilation, self.padding_mode = stride, padding, dilation, padding_mode
        self._setup(_default_weight((out_channels, in_channels, kernel_size, kernel_size), generator),
                    {"c_pre": in_channels, "c_post": out_channels, "c_height": kernel_size, "c_width": kernel_size},
                    rule="contrastive", activation=activation, eta=eta, momentum=momentum,
                    label_smoothing=label_smoothing, constraint=constraint, clip_value=clip_value, name=name)

    def rate_vectors(self) -> list:
        return [self.c_post, self.c_pre, self.c_height, self.c_width]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"layer {self.name!r} expects input B × {self.in_channels} × H × W, got {tuple(x.shape)}")
        if self.padding:
            mode = "reflect" if self.padding_mode == "reflect" else "constant"
            x = F.pad(x, [self.padding] * 4, mode=mode)
        u = F.conv2d(x, self.current_weight(), stride=self.stride, dilation=self.dilation)
        self._record(x, u)
        return activate(u, self.activation)

    def _accumulate(self, x, u, labels):
        delta, loss = contrastive_delta_conv(x, u, labels, self.weight.shape, self.stride, self.dilation,
                                             self.activation, self.label_smoothing)
        self.momentum_buffer.mul_(self.momentum).add_(delta)
        return loss

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, padding_mode={self.padding_mode!r}, "
                + self._settings())


NEURON_CENTRIC_TYPES = (ContrastiveLinear, ContrastiveConv2d)


# ----- presets: plain data here, typed by hebblib.config.ContrastivePresetConfig ------------------------
# python -m hebblib list-presets lists them; python -m hebblib reproduce --preset NAME runs them.
LUNELLI = "Lunelli (2024) MSc thesis, Univ. Trento (seed 003; spec miconi-lunelli-manzali Part 2)"
ADAMW_C = {"name": "adamw", "lr": 0.03, "weight_decay": 0.003}       # on the C's only (§6.1)
SGD_BP = {"name": "sgd", "lr": 1e-3, "momentum": 0.9}                # backprop baselines (§6.1; β assumed)
STANDARDIZE = {"normalization": "standardize"}
MLP_TRAINING = {"epochs": 100, "batch_size": 32, "augment": False}
CONV_TRAINING = {"epochs": 50, "batch_size": 32, "augment": False}
MLP_MODEL = {"hidden": [2000, 2000, 2000, 2000], "activation": "tanh", "dropout": 0.0, "eta": 1e-3,
             "momentum": 0.9, "label_smoothing": 0.0}
CONV_WIDTH_DROPOUT = {4: 0.3, 2: 0.1, 1: 0.0}  # §6.2


def _conv_model(width, **more):
    return {"width_factor": width, "activation": "tanh", "dropout": CONV_WIDTH_DROPOUT[width], "eta_conv": 1e-4,
            "eta_linear": 1e-3, "momentum": 0.9, "label_smoothing": 0.0, **more}


def _preset(description, published, std, table, network, learning, model, training):
    return {"description": description, "published": published, "published_std": std,
            "source": f"{LUNELLI}, {table}", "network": network, "learning": learning, "model": model,
            "optimizer": ADAMW_C if learning == "contrastive" else SGD_BP, "training": training, "data": STANDARDIZE}


def _backprop_model(model):
    return {k: v for k, v in model.items() if k not in ("eta", "eta_conv", "eta_linear", "momentum",
                                                        "label_smoothing")}


CONTRASTIVE_PRESETS = {
    "contrastive_mlp": _preset("4×2000 tanh MLP, contrastive Hebbian with momentum", 42.17, 0.38, "Table 6.2",
                               "mlp", "contrastive", MLP_MODEL, MLP_TRAINING),
    "contrastive_mlp_label_smoothing": _preset("contrastive_mlp with label smoothing α = 0.1", 41.90, 0.32,
                                               "Table 6.2", "mlp", "contrastive",
                                               {**MLP_MODEL, "label_smoothing": 0.1}, MLP_TRAINING),
    "contrastive_mlp_no_momentum": _preset("contrastive_mlp without momentum on ΔW (β = 0)", 38.89, 0.76,
                                           "Table 6.2", "mlp", "contrastive", {**MLP_MODEL, "momentum": 0.0},
                                           MLP_TRAINING),
    "contrastive_mlp_backprop": _preset("the same MLP trained by backprop (SGD + momentum, lr 0.001)", 49.49, 0.79,
                                        "Table 6.2", "mlp", "backprop", _backprop_model(MLP_MODEL), MLP_TRAINING),
    "contrastive_conv_f4": _preset("SoftHebb-width conv net F = 4 + two hidden FC layers, contrastive Hebbian",
                                   70.04, 0.24, "Table 6.4", "conv", "contrastive", _conv_model(4), CONV_TRAINING),
    "contrastive_conv_f2": _preset("conv net F = 2, contrastive Hebbian", 68.71, 0.76, "Table 6.4", "conv",
                                   "contrastive", _conv_model(2), CONV_TRAINING),
    "contrastive_conv_f1": _preset("conv net F = 1, contrastive Hebbian", 66.78, 0.52, "Table 6.4", "conv",
                                   "contrastive", _conv_model(1), CONV_TRAINING),
    "contrastive_conv_f4_relu": _preset("conv net F = 4 with ReLU instead of tanh", 70.05, 0.44, "Table 6.5",
                                        "conv", "contrastive", _conv_model(4, activation="relu"), CONV_TRAINING),
    "contrastive_conv_backprop": _preset("the conv net F = 4 trained by backprop (SGD + momentum, lr 0.001)",
                                         80.38, 0.52, "Table 6.4", "conv", "backprop",
                                         _backprop_model(_conv_model(4)), CONV_TRAINING),
    "contrastive_conv_f1_backprop": _preset("the conv net F = 1 trained by backprop (no published number)",
                                            None, None, "§6.2 (protocol only)", "conv", "backprop",
                                            _backprop_model(_conv_model(1)), CONV_TRAINING),
}
NETWORKS = ("mlp", "conv")
LEARNING = ("contrastive", "backprop")
OPTIMIZERS = ("adamw", "sgd")


def list_contrastive_presets() -> list[str]:
    return list(CONTRASTIVE_PRESETS)


def get_contrastive_preset(name: str) -> dict:
    """A deep copy of preset ``name`` (see :data:`CONTRASTIVE_PRESETS`), with its name."""
    if name not in CONTRASTIVE_PRESETS:
        raise choice_error("contrastive preset", name, CONTRASTIVE_PRESETS)
    preset = copy.deepcopy(CONTRASTIVE_PRESETS[name])
    preset["name"] = name
    return preset


def validate_contrastive_preset(preset: dict) -> dict:
    """Check a preset's structure and values as :class:`hebblib.config.ContrastivePresetConfig` (an unknown
    key, a wrong type or a value out of range is one ``ValueError`` naming the key path, the value and the
    valid values); return it."""
    from .config import ContrastivePresetConfig

    ContrastivePresetConfig.from_dict(preset)
    return preset


def change_contrastive_preset(preset, change: dict) -> dict:
    """``preset`` (a name or a dict; not modified) with ``change`` merged in key by key and recorded under
    ``"change"``: a variant with its own runs folder and results row, e.g. ``{"training": {"epochs": 10}}``
    (:func:`hebblib.config.apply_contrastive_change`; a bad key or value is one ``ValueError``)."""
    from .config import apply_contrastive_change

    preset = get_contrastive_preset(preset) if isinstance(preset, str) else copy.deepcopy(preset)
    preset.setdefault("name", "custom")
    return apply_contrastive_change(preset, change)


def build_contrastive_model(preset: dict, generator: torch.Generator | None = None):
    """The network of a preset (:func:`hebblib.networks.contrastive.contrastive_mlp` or ``contrastive_conv``)."""
    from .networks.contrastive import contrastive_conv, contrastive_mlp  # late: that module imports this one

    validate_contrastive_preset(preset)
    build = contrastive_mlp if preset["network"] == "mlp" else contrastive_conv
    return build(**preset["model"], learning=preset["learning"], generator=generator)


def make_optimizer(model, spec: dict) -> torch.optim.Optimizer:
    """AdamW (``lr``, ``weight_decay``) or SGD (``lr``, ``momentum``) over the model's trainable parameters:
    the C's of a contrastive network, the weights of a backprop one."""
    check_choice("optimizer", spec.get("name"), OPTIMIZERS)
    params = [p for p in model.parameters() if p.requires_grad]
    if spec["name"] == "adamw":
        return torch.optim.AdamW(params, lr=spec["lr"], weight_decay=spec.get("weight_decay", 0.0))
    return torch.optim.SGD(params, lr=spec["lr"], momentum=spec.get("momentum", 0.0))


# ----- the training loop -----------------------------------------------------------------------------
def _rate_statistics(model) -> dict:
    """Per layer and per C vector: mean, std, min, max (for the plot of how the learning rates evolve)."""
    stats = {}
    for name, layer in model.plastic_layers().items():
        stats[name] = {}
        for key in ("c_pre", "c_post", "c_height", "c_width"):
            c = getattr(layer, key, None)
            if c is not None:
                c = c.detach().float()
                stats[name][key[2:]] = torch.stack([c.mean(), c.std() if c.numel() > 1 else c.new_zeros(()),
                                                    c.min(), c.max()])
    return stats


def _read_rate_statistics(stats) -> dict:
    return {layer: {key: dict(zip(("mean", "std", "min", "max"), values.tolist())) for key, values in per.items()}
            for layer, per in stats.items()}


def train_contrastive(model, train, val, test, *, epochs: int, optimizer: dict | None = None, batch_size: int = 32,
                      augment: bool = False, generator: torch.Generator | None = None, progress: bool = True,
                      desc: str = "contrastive", checkpoint=None, checkpoint_key: str | None = None,
                      check_every: int | None = None) -> list[dict]:
    """Train ``model`` (a :class:`hebblib.networks.contrastive.ContrastiveNet`) on ``train`` (a ``DeviceDataset``)
    and evaluate on ``val`` and ``test`` after every epoch.

    ``model.learning == 'contrastive'``: the single-forward-pass step of the module docstring, ``optimizer``
    (default AdamW 0.03, weight decay 0.003) on the C's. ``'backprop'``: plain backprop of the cross-entropy,
    ``optimizer`` default SGD 0.001 with momentum 0.9. Returns one record per epoch: ``epoch``, ``lr``,
    ``train_loss`` (cross-entropy), ``train_acc``, ``val_acc``, ``test_acc`` (%), ``local_loss`` (mean Eq. 4.9
    per hidden layer; the output layer's cross-entropy), ``rates`` (C statistics per layer), ``seconds``,
    ``train_seconds``.

    ``checkpoint``: a file written after every epoch (model, optimiser, random streams, records); a call with
    the same ``checkpoint_key`` goes on after its last finished epoch. Non-finite weights or C's raise
    :class:`HebbianDivergenceError` naming the layer, the epoch and the batch (checked every ``check_every``
    steps: 1 on the CPU, 50 on CUDA).
    """
    from .classifier import _correct_on_images, _record, _resume_end_to_end, save_epoch_checkpoint  # shared
    from .runtime import flush_denormals
    from .training import CUDA_CHECK_EVERY

    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 2:
        raise ValueError(f"batch_size must be an int >= 2 (the rule compares samples of a batch), got {batch_size!r}")
    check_choice("learning", getattr(model, "learning", None), LEARNING)
    contrastive = model.learning == "contrastive"
    optimizer = make_optimizer(model, optimizer or (ADAMW_C if contrastive else SGD_BP))
    rate = optimizer.param_groups[0]["lr"]
    n, device = len(train), train.device
    check_every = check_every or (CUDA_CHECK_EVERY if device.type == "cuda" else 1)
    history = _resume_end_to_end(checkpoint, checkpoint_key, model, optimizer, generator) if checkpoint else []
    n_batches = -(-n // batch_size)
    drop_last = n % batch_size == 1  # a batch of one has no pair to compare
    with flush_denormals():
        for epoch in tqdm(range(len(history), epochs), desc=desc, disable=not progress, leave=False,
                          initial=len(history), total=epochs):
            started = time.perf_counter()
            model.train()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), dtype=torch.long, device=device)
            local_sums: dict[str, torch.Tensor] = {}
            steps = seen = 0
            batches = train.batches(batch_size, shuffle=True, augment=augment, generator=generator,
                                    drop_last=drop_last)
            for b, (x, y) in enumerate(tqdm(batches, total=n_batches, desc=f"{desc} epoch {epoch + 1}",
                                            disable=not progress, leave=False)):
                optimizer.zero_grad(set_to_none=True)  # before begin_step: its graph must survive (§4.3)
                if contrastive:
                    model.begin_step()
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                if logits.requires_grad:  # the very first contrastive step has no pending update, so no graph
                    loss.backward()
                    optimizer.step()
                if contrastive:
                    for name, value in model.local_updates(y).items():
                        local_sums[name] = local_sums.get(name, 0) + value
                loss_sum += loss.detach() * len(y)
                correct += (logits.detach().argmax(1) == y).sum()
                steps, seen = steps + 1, seen + len(y)
                if steps % check_every == 0:
                    model.check_finite(f"{desc}: epoch {epoch + 1}, batch {b + 1}/{n_batches}")
            model.check_finite(f"{desc}: end of epoch {epoch + 1}")
            train_seconds = time.perf_counter() - started
            val_correct, test_correct = _correct_on_images(model, val), _correct_on_images(model, test)
            record = _record(epoch, rate, loss_sum, correct, seen, val_correct, len(val), test_correct, len(test))
            local = {name: float(value) / steps for name, value in local_sums.items()}
            history.append({**record, "local_loss": local, "rates": _read_rate_statistics(_rate_statistics(model)),
                            "train_seconds": train_seconds, "images_per_s": seen / train_seconds,
                            "seconds": time.perf_counter() - started})
            if checkpoint:
                save_epoch_checkpoint(checkpoint, checkpoint_key, model, optimizer, history, generator)
    return history


# ----- one run, several seeds, command line ----------------------------------------------------------
def run_contrastive(preset, *, seed: int = 0, root=None, source: str = "auto", device=None, quick: bool | None = None,
                    epochs: int | None = None, limit_train: int | None = None, limit_test: int | None = None,
                    val_size: int = 5000, split_seed: int = 0, out=None, resume: bool = True, progress: bool = True,
                    download: bool = True, notice=print) -> dict:
    """Train and evaluate one contrastive preset (a name or a dict, changed or not: :func:`change_contrastive_preset`)
    for one seed; results and per-epoch checkpoints under ``out`` (default ``runs/``) in the layout of
    :func:`hebblib.training.run_preset`: ``<out>/<preset>[-change-<hash>]/<source>-n<images>-<hash>/seed<k>/``,
    a ``results.json`` with the same fields (no separate unsupervised phase: its ``images_per_s`` is None; the
    training epochs under ``supervised``), so ``scripts/results_table.py collect`` reads it like any other.
    ``quick`` (default ``hebblib.is_quick()``) uses the shipped subset and at most 3 epochs; ``epochs``
    overrides the preset's. Every preset value and option is checked before any data is read. Accuracies in %."""
    from .config import ContrastivePresetConfig, RunOptions
    from .results import (PROTOCOL_VERSION, config_hash, default_out, group_dir, read_json, summarize_history,
                          variant_stem, write_json)
    from .runtime import describe_device, get_device, is_quick, seed_everything
    from .training import QUICK_SUPERVISED_EPOCHS, _version, load_splits, resolve_source

    started, t0 = datetime.datetime.now().isoformat(timespec="seconds"), time.perf_counter()
    preset = get_contrastive_preset(preset) if isinstance(preset, str) else copy.deepcopy(preset)
    preset.setdefault("name", "custom")
    config = ContrastivePresetConfig.from_dict(preset)
    quick = is_quick() if quick is None else bool(quick)
    RunOptions(seed=seed, source=source, root=root, quick=quick, limit_train=limit_train, limit_test=limit_test,
               val_size=val_size, split_seed=split_seed, supervised_epochs=epochs, device=device, resume=resume,
               download=download, progress=progress, out=out)  # the pipeline's checks of the run options
    n_epochs = epochs or (min(config.training.epochs, QUICK_SUPERVISED_EPOCHS) if quick else config.training.epochs)
    device = get_device(device)
    source, message = resolve_source(source, root, quick, download)
    if message and notice:
        notice(message)
    data_t0 = time.perf_counter()
    train, val, test = load_splits(preset["data"], root=root, source=source, device=device, limit_train=limit_train,
                                   limit_test=limit_test, val_size=val_size, split_seed=split_seed)
    data_seconds = time.perf_counter() - data_t0
    data_info = {"source": source, "normalization": preset["data"]["normalization"], "n_train": len(train),
                 "n_val": len(val), "n_test": len(test), "split_seed": split_seed, "protocol": PROTOCOL_VERSION}
    recipe = {k: preset[k] for k in ("network", "learning", "model", "optimizer", "training", "data")}
    key = config_hash({"recipe": recipe, "seed": seed, "data": data_info, "epochs": n_epochs, "quick": quick})
    variant = variant_stem(preset["name"], False, preset.get("change"))
    recipe_hash = config_hash({"recipe": recipe, "data": data_info, "epochs": n_epochs})  # seeds sharing it average
    run_dir = group_dir(out or default_out(), variant, source, len(train) + len(val), recipe_hash) / f"seed{seed}"
    done = read_json(run_dir / "results.json") if resume else None
    if done and done.get("complete") and done.get("config_hash") == key:
        return {**done, "reused": True}
    seed_everything(seed, deterministic=device.type != "cuda")
    model = build_contrastive_model(preset, generator=torch.Generator().manual_seed(seed)).to(device)
    generator = torch.Generator().manual_seed(seed * 1000 + 3)
    training = config.training
    history = train_contrastive(model, train, val, test, epochs=n_epochs, optimizer=preset["optimizer"],
                                batch_size=training.batch_size, augment=training.augment, generator=generator,
                                progress=progress, desc=f"{variant} (seed {seed})",
                                checkpoint=run_dir / "contrastive.pt" if resume else None, checkpoint_key=key)
    train_seconds = sum(h["seconds"] for h in history)  # the epochs before a resume too
    result = {
        "preset": preset["name"], "original": False, "change": preset.get("change"),
        "description": preset.get("description"), "published": preset.get("published"),
        "published_std": preset.get("published_std"), "source": preset.get("source"), "protocol": None,
        "seed": seed, "quick": quick, "data": data_info, "device": describe_device(device),
        "torch_version": torch.__version__, "hebblib_version": _version(), "started_at": started,
        "architecture": model.architecture, "network": preset["network"], "learning": preset["learning"],
        "num_parameters": model.num_parameters(), "num_rate_parameters": model.num_rate_parameters(),
        # the layout of every preset's record: no label-free phase before the supervised one
        "unsupervised": {"images": 0, "seconds": 0.0, "images_per_s": None, "epochs": 0,
                         "resumed_from_checkpoint": False},
        "supervised": {"mode": preset["learning"], "epochs": n_epochs, "batch_size": training.batch_size,
                       "optimizer": dict(preset["optimizer"]), "augment": training.augment},
        "epochs_run": n_epochs,
        "images_per_s": sum(len(train) for _ in history) / sum(h["train_seconds"] for h in history),
        "timings_s": {"data": data_seconds, "unsupervised": 0.0, "features": 0.0, "supervised": train_seconds,
                      "total": time.perf_counter() - t0},
        "precision": {"name": "fp32", "requested": "fp32", "reason": "the contrastive layers compute in fp32"},
        "epochs": history, "config": preset, "config_hash": key, "recipe_hash": recipe_hash,
        "run_dir": str(run_dir), "complete": True, **summarize_history(history),
    }
    write_json(run_dir / "results.json", result)
    return result


def reproduce_contrastive(preset, *, seeds: int = 1, first_seed: int = 0, out=None, **options) -> dict:
    """:func:`run_contrastive` for ``seeds`` seeds; mean ± std (and the published ± std) written to
    ``summary.json`` beside them, as :func:`hebblib.training.reproduce` does."""
    from .results import summarize_runs, write_json

    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"seeds must be an int >= 1, got {seeds!r}")
    results = [run_contrastive(preset, seed=s, out=out, **options) for s in range(first_seed, first_seed + seeds)]
    summary = summarize_runs(results)
    summary["published_std"] = results[0].get("published_std")
    path = Path(results[0]["run_dir"]).parent / "summary.json"
    write_json(path, summary)
    summary["runs"], summary["summary_path"] = results, str(path)
    return summary
