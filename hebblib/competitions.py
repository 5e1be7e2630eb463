"""Competition mechanisms: turn a layer's activation ``u`` into the post-synaptic signal ``y``.

Every competition is a small ``nn.Module`` whose ``forward(u, ctx)`` returns ``y`` with the shape of
``u``. Competitors sit along dimension 1 (the channels at one position, or, for depthwise layers,
the positions of one channel: the layer rearranges ``u`` before and after). Any state (thresholds,
histories) is a buffer, so ``state_dict`` captures it.

Sources: seed 000 §2.6–2.7 and §3.3.4–3.3.8 (Nimmo), seed 002 §2.3 (Miconi), seed 004 (Krotov–Hopfield).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .distributed import LOCAL
from .errors import check_options, check_positive, choice_error


def channel_argmax(u: torch.Tensor) -> torch.Tensor:
    """``u.argmax(dim=1, keepdim=True)``: ties (and NaN) to the lowest index. On the CPU through ``u.max(dim=1)``,
    whose indices are the same (tests/test_layers.py) and which took 2-3x less time than ``argmax`` over the
    channels of soft's three layers (64 × 96 × 32 × 32 … 64 × 1536 × 8 × 8; 27.5 → 8.8, 16.6 → 6.5, 12.8 → 6.8 ms
    on 2 threads of an AVX-512 Xeon, machine under load)."""
    if u.device.type == "cpu":
        return u.max(dim=1, keepdim=True).indices
    return u.argmax(dim=1, keepdim=True)


def lower_median(x: torch.Tensor) -> torch.Tensor:
    """``x.median(dim=0).values``: the lower median over dim 0 (element ``(n - 1) // 2`` of the sorted values),
    NaN where a column holds one. On the CPU through NumPy's selection along contiguous rows, the same values
    (tests/test_layers.py) in under a third of the time: the temporal competition's threshold over its 500 × 96 ×
    32 × 32 history took 1.13 s a batch with ``torch.median`` and 0.34 s this way (bf16, one thread of an
    AVX-512 Xeon with AMX, the other core busy)."""
    if x.device.type != "cpu" or x.shape[0] == 0 or x.requires_grad:
        return x.median(dim=0).values
    n, rest = x.shape[0], x.shape[1:]
    rows = x.reshape(n, -1).t().contiguous()
    rows = (rows if rows.dtype in (torch.float32, torch.float64) else rows.float()).numpy()  # exact
    kth = (n - 1) // 2
    picked = np.partition(rows, kth, axis=1)[:, kth]  # (one kth: asking for two took 4x the time)
    values = np.where(np.isnan(rows).any(axis=1), np.nan, picked).astype(rows.dtype)  # median's NaN
    return torch.from_numpy(values).to(x.dtype).reshape(rest)


def winner_mask(u: torch.Tensor, k: int = 1) -> torch.Tensor:
    """1 for the ``k`` largest entries along dim 1, else 0. With k=1 ties go to the lowest index."""
    winners = channel_argmax(u) if k == 1 else u.topk(k, dim=1).indices
    return torch.zeros_like(u).scatter_(1, winners, 1.0)


def winners_of(u: torch.Tensor, ctx=None) -> torch.Tensor:
    """``argmax_o u`` (keepdim), shared through the layer context when there is one: the layer's win
    count needs the same indices, and an argmax over channels is not cheap on the CPU."""
    return ctx.winners() if ctx is not None and hasattr(ctx, "winners") else channel_argmax(u)


def sign_flip_losers(values: torch.Tensor, u: torch.Tensor, winner: torch.Tensor | None = None) -> torch.Tensor:
    """``values ⊙ s`` with ``s = +1`` at the most active unit of ``u`` and ``−1`` elsewhere
    (computed in place on a negated copy: no mask tensor is built). ``winner``: ``argmax_o u`` if known."""
    winner = channel_argmax(u) if winner is None else winner
    return values.neg().scatter_(1, winner, values.gather(1, winner))


class Competition(nn.Module):
    """Base class. ``min_competitors`` is checked against the layer's channel count at construction."""

    name = "base"
    # reductions over the batch go through the reducer (the identity in one process; hebblib.distributed)
    reducer = LOCAL

    def min_competitors(self) -> int:
        return 1

    def check(self, competitors: int) -> None:
        need = self.min_competitors()
        if competitors < need:
            raise ValueError(
                f"competition {self.name!r} needs at least {need} competing units, but the layer has {competitors}"
            )


class NoCompetition(Competition):
    """Every unit learns from its own activation: ``y = u`` (seed 000 'basic' mode)."""

    name = "none"

    def forward(self, u, ctx=None):
        return u


class HardWTA(Competition):
    """Hard winner-take-all, seed 000 eqs (25)–(29).

    ``y = u ⊙ m`` (activity-masked, eq 29) or ``y = m`` when ``binary`` (eq 28, as Miconi), where
    ``m`` marks the ``k`` most active units at each position (k=1: one winner; k>1: top-k).
    """

    name = "hard_wta"

    def __init__(self, k: int = 1, binary: bool = False):
        super().__init__()
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"hard_wta k must be an int >= 1, got {k!r}")
        self.k, self.binary = k, bool(binary)

    def min_competitors(self):
        return self.k

    def forward(self, u, ctx=None):
        winners = winners_of(u, ctx) if self.k == 1 else u.topk(self.k, dim=1).indices
        kept = torch.ones_like(winners, dtype=u.dtype) if self.binary else u.gather(1, winners)
        return torch.zeros_like(u).scatter_(1, winners, kept)

    def extra_repr(self):
        return f"k={self.k}, binary={self.binary}"


class TopK(HardWTA):
    """k-winners-take-all: :class:`HardWTA` with ``k`` winners (default 5)."""

    name = "topk"

    def __init__(self, k: int = 5, binary: bool = False):
        super().__init__(k=k, binary=binary)


class AntiHebbianWTA(Competition):
    """The winner learns Hebbian, every other unit anti-Hebbian (seed 000 eq 31, 'antihard' mode):
    ``y = u ⊙ s`` with ``s = +1`` at the winner and ``−1`` elsewhere."""

    name = "anti_wta"

    def min_competitors(self):
        return 2

    def forward(self, u, ctx=None):
        return sign_flip_losers(u, u, winners_of(u, ctx))


class SoftWTA(Competition):
    """Soft winner-take-all (SoftHebb; seed 000 eq 30, §3.3.5):

        q = softmax(u / T) over the competitors,
        y = q ⊙ s,  s = +1 for the most active unit, −1 for the others (when ``anti_hebbian``).

    ``temperature`` T → 0 gives hard WTA, T → ∞ uniform. Nimmo's code multiplies by
    ``t_invert`` = 1/T; pass either ``temperature`` or ``inverse_temperature``.
    """

    name = "soft_wta"

    def __init__(self, temperature: float | None = None, inverse_temperature: float | None = None,
                 anti_hebbian: bool = True):
        super().__init__()
        if temperature is not None and inverse_temperature is not None:
            raise ValueError("give soft_wta either temperature or inverse_temperature, not both")
        if temperature is None:
            inverse_temperature = 1.0 if inverse_temperature is None else inverse_temperature
            check_positive("soft_wta inverse_temperature", inverse_temperature)
            temperature = 1.0 / inverse_temperature
        check_positive("soft_wta temperature", temperature)
        self.temperature, self.anti_hebbian = float(temperature), bool(anti_hebbian)

    def forward(self, u, ctx=None):
        q = torch.softmax(u / self.temperature, dim=1)
        return sign_flip_losers(q, u, winners_of(u, ctx)) if self.anti_hebbian else q

    def extra_repr(self):
        return f"temperature={self.temperature:g}, anti_hebbian={self.anti_hebbian}"


class KrotovRanking(Competition):
    """Krotov–Hopfield ranking (seed 004): the unit with the highest current gets ``g = 1``,
    the ``k``-th ranked gets ``g = −Δ`` (anti-Hebbian), all others ``0``."""

    name = "krotov"

    def __init__(self, k: int = 2, delta: float = 0.4):
        super().__init__()
        if not isinstance(k, int) or k < 2:
            raise ValueError(f"krotov ranking k must be an int >= 2, got {k!r}")
        check_positive("krotov delta", delta, allow_zero=True)
        self.k, self.delta = k, float(delta)

    def min_competitors(self):
        return self.k

    def forward(self, u, ctx=None):
        # Ranked by repeated argmax (the first of equal maxima), so that exactly tied currents go to the lowest
        # index, as in hard and soft WTA: topk leaves the order of ties unspecified (duplicated filters were
        # ranked arbitrarily). The competitors move to the last, contiguous dimension, where argmax is fastest.
        first = winners_of(u, ctx).movedim(1, -1)
        rest = u.movedim(1, -1).clone(memory_format=torch.contiguous_format).scatter_(-1, first, float("-inf"))
        for _ in range(self.k - 2):
            rest.scatter_(-1, rest.argmax(dim=-1, keepdim=True), float("-inf"))
        g = torch.zeros_like(rest).scatter_(-1, first, 1.0)
        g.scatter_(-1, rest.argmax(dim=-1, keepdim=True), -self.delta)
        return g.movedim(-1, 1).contiguous()

    def extra_repr(self):
        return f"k={self.k}, delta={self.delta}"


class TemporalCompetition(Competition):
    """Competition against a threshold from recent history (seed 000 §3.3.7 'temporal selection').

    The last ``window`` samples of activity are kept. At each position the threshold is the mean
    over units of each unit's median activity over that history:

        τ[h, w] = mean_o median_n history[n, o, h, w],   y_g = u ⊙ 1[u > τ],
        y = top-k(y_g) over units (values kept, others 0).

    ``square_winner=True`` reproduces the original code, which multiplies the kept values in a
    second time (``y = y_g ⊙ topk(y_g)``, i.e. ``u²`` at the winner); its published number
    (temporal, 74.6 %) was produced that way.
    """

    name = "temporal"

    def __init__(self, window: int = 500, k: int = 1, square_winner: bool = False):
        super().__init__()
        if not isinstance(window, int) or window < 1:
            raise ValueError(f"temporal window must be an int >= 1, got {window!r}")
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"temporal k must be an int >= 1, got {k!r}")
        self.window, self.k, self.square_winner = window, k, bool(square_winner)
        self.register_buffer("history", torch.empty(0))

    def min_competitors(self):
        return self.k

    def forward(self, u, ctx=None):
        recent = self.reducer.gather(u.detach())  # the whole global batch, in its order
        if self.history.numel() and self.history.shape[1:] == u.shape[1:]:
            stay = max(self.window - len(recent), 0)  # how many of the newest old samples stay in the window
            older = self.history[max(len(self.history) - stay, 0) :]
            recent = torch.cat([older.to(u.dtype), recent])  # a new tensor: one copy, no clone needed
        else:
            recent = recent.clone()  # never an alias of u
        self.history = recent[-self.window :] if len(recent) > self.window else recent
        threshold = lower_median(self.history).mean(dim=0, keepdim=True)  # τ: (1, *positions)
        gated = u * (u > threshold.unsqueeze(0)).to(u.dtype)
        kept = gated * winner_mask(gated, self.k)
        return kept * gated if self.square_winner else kept

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "history"
        if key in state_dict:  # the history's shape depends on the inputs seen; resize before copying
            self.history = torch.empty_like(state_dict[key], device=self.history.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self):
        return f"window={self.window}, k={self.k}, square_winner={self.square_winner}"


class StatisticalCompetition(Competition):
    """Statistical threshold (seed 000 §3.3.7 'statistical selection', an indirect homeostasis).

    ``S = conv(x, W) / ‖W_o‖`` (a similarity with the input norm left in). A unit may learn at a
    position only where it beats the mean plus ``k_std`` standard deviations of all units there:

        T = mean_o S + k_std · std_o S,   y = top-k( S ⊙ 1[S > T] ).

    ``square_winner`` reproduces the original squaring (as in :class:`TemporalCompetition`).
    ``double_padding=True`` reproduces the original bug that padded the already padded input a
    second time, which shrinks the Hebbian term to one tap broadcast over the kernel (colour-only
    filters, 59.8 % in the thesis); the layer handles the size mismatch.
    """

    name = "statistical"

    def __init__(self, k_std: float = 2.0, k: int = 1, square_winner: bool = False, double_padding: bool = False):
        super().__init__()
        check_positive("statistical k_std", k_std, allow_zero=True)
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"statistical k must be an int >= 1, got {k!r}")
        self.k_std, self.k = float(k_std), k
        self.square_winner, self.double_padding = bool(square_winner), bool(double_padding)

    def min_competitors(self):
        return max(self.k, 2)

    def forward(self, u, ctx=None):
        if ctx is None:
            raise ValueError("statistical competition needs the layer context (input and weights)")
        similarity = ctx.similarity(extra_padding=self.double_padding)
        threshold = similarity.mean(dim=1, keepdim=True) + self.k_std * similarity.std(dim=1, keepdim=True)
        gated = similarity * (similarity > threshold).to(u.dtype)
        kept = gated * winner_mask(gated, self.k)
        return kept * gated if self.square_winner else kept

    def extra_repr(self):
        return (f"k_std={self.k_std}, k={self.k}, square_winner={self.square_winner}, "
                f"double_padding={self.double_padding}")


class AdaptiveThreshold(Competition):
    """Miconi's homeostatic thresholds (seed 002 §2.3): each unit has a threshold θ_o that is
    subtracted before a binary k-WTA, and adapts so that its firing rate approaches k/N:

        y = kWTA_binary(u − θ),   θ_o ← θ_o + rate · ( mean_{n,h,w} y_o − k/N ).

    ``positive=True``: a winner fires only where ``u − θ > 0``, as in Miconi's code (spec
    miconi-lunelli-manzali §1.12 item 7: values below the k-th largest are zeroed, then ``y = (y > 0)``), so
    a position whose best unit is below its threshold teaches nothing and counts in no firing rate.
    """

    name = "adaptive_threshold"

    def __init__(self, k: int = 1, rate: float = 3.0, binary: bool = True, positive: bool = False):
        super().__init__()
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"adaptive_threshold k must be an int >= 1, got {k!r}")
        check_positive("adaptive_threshold rate", rate, allow_zero=True)
        self.k, self.rate, self.binary, self.positive = k, float(rate), bool(binary), bool(positive)
        self.register_buffer("threshold", torch.empty(0))

    def min_competitors(self):
        return self.k

    def forward(self, u, ctx=None):
        units = u.shape[1]
        if self.threshold.numel() != units:
            self.threshold = torch.zeros(units, device=u.device, dtype=u.dtype)
        theta = self.threshold.view(1, units, *([1] * (u.dim() - 2)))
        shifted = u - theta
        mask = winner_mask(shifted, self.k)
        if self.positive:
            mask = mask * (shifted > 0)
        y = mask if self.binary else shifted * mask
        firing_rate = self.reducer.mean(mask.sum(dim=[d for d in range(mask.dim()) if d != 1]), mask.numel() // units)
        self.threshold += self.rate * (firing_rate - self.k / units)
        return y

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "threshold"
        if key in state_dict:
            self.threshold = torch.empty_like(state_dict[key], device=self.threshold.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self):
        return f"k={self.k}, rate={self.rate}, binary={self.binary}" + (", positive=True" if self.positive else "")


COMPETITIONS = {
    cls.name: cls
    for cls in (NoCompetition, HardWTA, TopK, AntiHebbianWTA, SoftWTA, KrotovRanking,
                TemporalCompetition, StatisticalCompetition, AdaptiveThreshold)
}


def available_competitions() -> list[str]:
    """Names accepted by ``competition=`` (for dropdowns and error messages)."""
    return sorted(COMPETITIONS)


def make_competition(spec) -> Competition:
    """Build a competition from a name, a dict ``{"name": ..., **options}`` or an instance."""
    if isinstance(spec, Competition):
        return spec
    if spec is None:
        spec = "none"
    options = {}
    if isinstance(spec, dict):
        options = dict(spec)
        spec = options.pop("name", None)
    if spec not in COMPETITIONS:
        raise choice_error("competition", spec, COMPETITIONS)
    check_options(f"competition {spec!r}", COMPETITIONS[spec], options)
    return COMPETITIONS[spec](**options)
