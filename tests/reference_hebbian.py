"""An independent, loop-based reference of the Hebbian engine, for the tests only.

Everything here is written from the equations of the specs (Nimmo thesis §1, Miconi App. A,
Manzali/Krotov–Hopfield §3.2) with explicit Python loops over samples ``n``, output positions
``(h, w)`` and units ``o``: no ``conv2d_weight``, no ``unfold``, no ``conv2d``. It is slow and meant
for tiny tensors (use float64). Padding too is written out (:func:`pad`), not borrowed from ``F.pad``.

The central equation (the update of one unit ``o``):

    ΔW[o] = Σ_{n,h,w} r[n,o,h,w] · patch(n,h,w)  −  (Σ_{n,h,w} s[n,o,h,w]) · W_eff[o]

where ``patch(n,h,w)[c,i,j] = x_p[n, c_g, h·stride + i·dilation, w·stride + j·dilation]`` over the
input channels ``c_g`` of unit ``o``'s group.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch


def pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


# ----- conversions: the loops run on NumPy arrays (fast scalar indexing), results come back as tensors
def as_array(t):
    return t.detach().cpu().numpy().astype(np.float64) if isinstance(t, torch.Tensor) else np.asarray(t, np.float64)


def as_tensor(a, like=None):
    dtype = like.dtype if isinstance(like, torch.Tensor) else torch.float64
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)).to(dtype)


# ----- geometry ---------------------------------------------------------------------------------
def padded_index(i, size, padding_mode):
    """The input index that padded position ``i`` (counting from the first padded row, ``i`` in
    ``[-pad, size + pad)``) copies, or None for a zero: reflect mirrors without repeating the edge,
    replicate repeats the edge, circular wraps around (PyTorch's definitions of the modes)."""
    if 0 <= i < size:
        return i
    if padding_mode == "zeros":
        return None
    if padding_mode == "reflect":
        return -i if i < 0 else 2 * (size - 1) - i
    if padding_mode == "replicate":
        return 0 if i < 0 else size - 1
    if padding_mode == "circular":
        return i % size
    raise ValueError(f"unknown padding_mode {padding_mode!r}")


def pad(x, padding, padding_mode="zeros"):
    """Pad the last two dims of x (N, C, H, W) by ``padding`` with the layer's ``padding_mode``, by explicit
    index arithmetic into a zero tensor (independent of the ``F.pad`` the library uses)."""
    ph, pw = pair(padding)
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    out = torch.zeros(n, c, h + 2 * ph, w + 2 * pw, dtype=x.dtype)
    for i in range(h + 2 * ph):
        src_i = padded_index(i - ph, h, padding_mode)
        for j in range(w + 2 * pw):
            src_j = padded_index(j - pw, w, padding_mode)
            if src_i is not None and src_j is not None:
                out[:, :, i, j] = x[:, :, src_i, src_j]
    return out


def output_size(size, kernel, stride, dilation):
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def input_channels_of(o, in_channels, out_channels, groups):
    """The input channels unit ``o`` sees: those of its group."""
    group = o // (out_channels // groups)
    per_group = in_channels // groups
    return slice(group * per_group, (group + 1) * per_group)


def patch(xp, n, h, w, o, kernel_size, stride, dilation, out_channels, groups):
    """The input patch under unit ``o``'s kernel at output position (h, w) of sample n: (C_g, kh, kw).
    ``xp`` is the padded input as an array; tap (i, j) reads row h·stride + i·dilation."""
    kh, kw = kernel_size
    sh, sw = stride
    dh, dw = dilation
    channels = input_channels_of(o, xp.shape[1], out_channels, groups)
    top, left = h * sh, w * sw  # rows top + i·dh for i < kh, columns left + j·dw for j < kw
    return xp[n, channels, top: top + (kh - 1) * dh + 1: dh, left: left + (kw - 1) * dw + 1: dw]


def grid(x_padded, kernel_size, stride, dilation):
    kh, kw = kernel_size
    return (output_size(x_padded.shape[2], kh, stride[0], dilation[0]),
            output_size(x_padded.shape[3], kw, stride[1], dilation[1]))


# ----- activations ------------------------------------------------------------------------------
def lebesgue(weight, p):
    """Krotov–Hopfield p-inner-product weights sgn(W)|W|^(p−1), entry by entry (MAN §3.2)."""
    return np.sign(weight) * np.abs(weight) ** (p - 1)


def activation(x_padded, weight, kind="dot", stride=1, dilation=1, groups=1, lebesgue_p=2.0):
    """The layer's activation u[n,o,h,w] by explicit loops.

    dot:            u = Σ w_o · patch
    cosine:         u = Σ (w_o / ‖w_o‖) · patch / sqrt(Σ patch² + 1e-8)         (true cosine)
    cosine_per_tap: w_hat[o,:,i,j] = w[o,:,i,j] / ‖w[o,:,i,j]‖ (norm over the input channels of one tap),
                    u = Σ w_hat_o · patch / sqrt(Σ patch² + 1e-8)                 (Nimmo §1.0 step 3)
    """
    stride, dilation = pair(stride), pair(dilation)
    xp, w = as_array(x_padded), as_array(weight)
    if lebesgue_p != 2:
        w = lebesgue(w, lebesgue_p)
    out_channels, _, kh, kw = w.shape
    if kind == "cosine":
        for o in range(out_channels):
            norm = math.sqrt((w[o] ** 2).sum())
            if norm > 0:
                w[o] = w[o] / norm
    elif kind == "cosine_per_tap":
        for o in range(out_channels):
            for i in range(kh):
                for j in range(kw):
                    norm = math.sqrt((w[o, :, i, j] ** 2).sum())
                    w[o, :, i, j] = w[o, :, i, j] / max(norm, 1e-12)
    elif kind != "dot":
        raise ValueError(kind)
    n_samples = xp.shape[0]
    height, width = grid(xp, (kh, kw), stride, dilation)
    u = np.zeros((n_samples, out_channels, height, width))
    for n in range(n_samples):
        for o in range(out_channels):
            for h in range(height):
                for v in range(width):
                    x = patch(xp, n, h, v, o, (kh, kw), stride, dilation, out_channels, groups)
                    value = (w[o] * x).sum()
                    if kind != "dot":
                        value = value / math.sqrt((x * x).sum() + 1e-8)
                    u[n, o, h, v] = value
    return as_tensor(u, x_padded)


# ----- the update -------------------------------------------------------------------------------
def hebbian_update(x_padded, weight, r, s=None, stride=1, dilation=1, groups=1):
    """ΔW[o] = Σ_{n,h,w} r[n,o,h,w] · patch(n,h,w) − (Σ_{n,h,w} s[n,o,h,w]) · W[o]."""
    stride, dilation = pair(stride), pair(dilation)
    xp, w, r = as_array(x_padded), as_array(weight), as_array(r)
    s = None if s is None else as_array(s)
    out_channels, _, kh, kw = w.shape
    delta = np.zeros_like(w)
    n_samples, _, height, width = r.shape
    assert (height, width) == grid(xp, (kh, kw), stride, dilation)
    for o in range(out_channels):
        for n in range(n_samples):
            for h in range(height):
                for v in range(width):
                    delta[o] += r[n, o, h, v] * patch(xp, n, h, v, o, (kh, kw), stride, dilation,
                                                      out_channels, groups)
        if s is not None:
            total = 0.0
            for n in range(n_samples):
                for h in range(height):
                    for v in range(width):
                        total += s[n, o, h, v]
            delta[o] -= total * w[o]
    return as_tensor(delta, weight)


def sanger_decay(y, weight):
    """Sanger's GHA decay: Σ_{j≤o} (Σ_{n,h,w} y_o y_j) W_j for each unit o (Nimmo eq 24)."""
    y, w = as_array(y), as_array(weight)
    units = y.shape[1]
    decay = np.zeros_like(w)
    for o in range(units):
        for j in range(o + 1):
            decay[o] += (y[:, o] * y[:, j]).sum() * w[j]
    return as_tensor(decay, weight)


def broadcast_hebbian_term(x_padded, r, weight_shape):
    """The statistical mode's double-padding Hebbian term when r covers the padded grid (k = 2p+1):
    term[o,c] = Σ_{n,h,w} r[n,o,h,w] · x_p[n,c,h,w], the same value at every tap (Nimmo §1.12)."""
    xp, r = as_array(x_padded), as_array(r)
    out_channels, in_channels, kh, kw = weight_shape
    term = np.zeros(weight_shape)
    for o in range(out_channels):
        for c in range(in_channels):
            term[o, c] = (r[:, o] * xp[:, c]).sum()
    return as_tensor(term, x_padded)


def normalize(delta, mode):
    """Update normalisation: by the layer's max |ΔW| ('global_max'), per unit ('per_filter'), or none."""
    if mode == "none":
        return delta.clone()
    if mode == "global_max":
        return delta / (float(delta.abs().max()) + 1e-30)
    out = delta.clone()
    for o in range(delta.shape[0]):
        out[o] = delta[o] / (float(delta[o].abs().max()) + 1e-30)
    return out


# ----- competitions on one vector of competitors (1-D arrays) -----------------------------------
def ranking(values):
    """Competitor indices from the most to the least active (ties: the lower index first)."""
    return sorted(range(len(values)), key=lambda i: (-values[i], i))


def hard_wta(values, k=1, binary=False):
    """Eq (28) (binary) or eq (29) (activity-masked): the k most active keep 1 or their value, others 0."""
    out = np.zeros_like(values)
    for i in ranking(values)[:k]:
        out[i] = 1.0 if binary else values[i]
    return out


def soft_wta(values, temperature=None, anti_hebbian=True, inverse_temperature=None):
    """Eq (30): q_i = e^{u_i/T} / Σ_j e^{u_j/T}; with anti-Hebbian losers the non-winners get −q_i.
    T defaults to 1; Nimmo's ``t_invert`` is 1/T."""
    if temperature is None:
        temperature = 1.0 / inverse_temperature if inverse_temperature is not None else 1.0
    peak = max(values)
    exps = [math.exp((v - peak) / temperature) for v in values]
    total = sum(exps)
    winner = ranking(values)[0]
    out = np.zeros_like(values)
    for i, e in enumerate(exps):
        out[i] = e / total if (i == winner or not anti_hebbian) else -e / total
    return out


def anti_wta(values):
    """Eq (31) applied to the losers: the winner keeps +u, every other unit −u."""
    winner = ranking(values)[0]
    return np.array([values[i] if i == winner else -values[i] for i in range(len(values))])


def krotov(values, k=2, delta=0.4):
    """Krotov–Hopfield g: 1 for the highest current, −Δ for the k-th ranked, 0 otherwise."""
    order = ranking(values)
    out = np.zeros_like(values)
    out[order[0]] = 1.0
    out[order[k - 1]] = -delta
    return out


def no_competition(values):
    return values.copy()


VECTOR_COMPETITIONS = {"none": no_competition, "hard_wta": hard_wta, "topk": hard_wta, "soft_wta": soft_wta,
                       "anti_wta": anti_wta, "krotov": krotov}
VECTOR_DEFAULTS = {"topk": {"k": 5}}


def competition_sites(shape, axis="channels", groups=1):
    """Every competition of a layer output of this shape, as an index:

    channels: at each (n, h, w) the units of one group compete: index (n, slice of units, h, w);
    space:    in each (n, o) all output positions compete (depthwise layers): index (n, o).
    """
    n_samples, units, height, width = shape
    if axis == "channels":
        per_group = units // groups
        for n in range(n_samples):
            for g in range(groups):
                for h in range(height):
                    for v in range(width):
                        yield (n, slice(g * per_group, (g + 1) * per_group), h, v)
    elif axis == "space":
        for n in range(n_samples):
            for o in range(units):
                yield (n, o)
    else:
        raise ValueError(axis)


def per_site(u, function, axis="channels", groups=1, **options):
    """Apply a vector competition at every competition site of u (N, O, H, W)."""
    a = as_array(u)
    y = np.zeros_like(a)
    for site in competition_sites(a.shape, axis, groups):
        y[site] = function(a[site].ravel(), **options).reshape(a[site].shape)
    return as_tensor(y, u)


def lower_median(values):
    """torch.median's median: the lower of the two middle values for an even count."""
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def temporal(u, history, window, k=1, square_winner=False):
    """Temporal competition (Nimmo §1.11) for the channels axis, groups=1; returns (y, new history).

    history ← the last ``window`` samples of [history; u];
    τ[h,w] = mean_o median_n history[n,o,h,w];  y_g = u · 1[u > τ];  y = top-k values of y_g.
    """
    if history is not None and history.shape[1:] == u.shape[1:]:
        history = torch.cat([history, u])
    else:
        history = u.clone()
    history = history[-window:].clone()
    past, a = as_array(history), as_array(u)
    _, units, height, width = a.shape
    tau = np.zeros((height, width))
    for h in range(height):
        for v in range(width):
            tau[h, v] = sum(lower_median(past[:, o, h, v]) for o in range(units)) / units
    gated = np.zeros_like(a)
    for n in range(a.shape[0]):
        for o in range(units):
            for h in range(height):
                for v in range(width):
                    if a[n, o, h, v] > tau[h, v]:
                        gated[n, o, h, v] = a[n, o, h, v]
    kept = as_array(per_site(gated, hard_wta, k=k))
    return as_tensor(kept * gated if square_winner else kept, u), history


def similarity(x_padded, weight, stride=1, dilation=1, groups=1):
    """S = conv(x_p, W) / (‖W_o‖ + 1e-10), the statistical competition's input (Nimmo §1.12)."""
    dot = activation(x_padded, weight, "dot", stride, dilation, groups)
    w = as_array(weight)
    for o in range(w.shape[0]):
        dot[:, o] /= math.sqrt((w[o] ** 2).sum()) + 1e-10
    return dot


def statistical(sim, k_std=2.0, k=1, square_winner=False, groups=1):
    """At each site T = mean_o S + k_std · std_o S (the unbiased std, as torch.std in the original code);
    y_g = S · 1[S > T]; y = top-k values of y_g (squared at the winner with ``square_winner``)."""
    a = as_array(sim)
    gated = np.zeros_like(a)
    for site in competition_sites(a.shape, "channels", groups):
        values = a[site]
        count = len(values)
        mean = sum(values) / count
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (count - 1))
        threshold = mean + k_std * std
        gated[site] = [v if v > threshold else 0.0 for v in values]
    kept = as_array(per_site(gated, hard_wta, groups=groups, k=k))
    return as_tensor(kept * gated if square_winner else kept, sim)


def adaptive_threshold(u, threshold, k=1, rate=3.0, binary=True):
    """Miconi's homeostatic thresholds (channels axis, groups=1); returns (y, new threshold).

    y = kWTA(u − θ) (binary, or the shifted values);  θ_o ← θ_o + rate · (mean_{n,h,w} winner_o − k/O).
    """
    a = as_array(u)
    units = a.shape[1]
    theta = np.zeros(units) if threshold is None else as_array(threshold)
    shifted = a.copy()
    for o in range(units):
        shifted[:, o] -= theta[o]
    mask = as_array(per_site(shifted, hard_wta, k=k, binary=True))
    y = mask if binary else shifted * mask
    new = theta.copy()
    for o in range(units):
        new[o] = theta[o] + rate * (mask[:, o].sum() / mask[:, o].size - k / units)
    return as_tensor(y, u), as_tensor(new, u)


# ----- rules: (r, s) ----------------------------------------------------------------------------
def rule_factors(name, y, u):
    """(r, s) of the stateless rules (Nimmo eqs 18, 19, 24, 31, 32; Oja 1982)."""
    if name == "hebb":
        return y.clone(), None
    if name == "anti_hebb":
        return -y, None
    if name == "instar":
        return y.clone(), y.clone()
    if name == "oja":
        return y.clone(), y * y
    if name == "softhebb":
        return y.clone(), y * u
    if name == "sanger":
        return y.clone(), None  # its decay mixes units: see sanger_decay
    raise ValueError(name)


def bcm(y, theta, theta_rate=0.5, theta_init=1.0):
    """BCM (Nimmo eq 23, §1.10): θ_o ← (1−τ)θ_o + τ·mean_{n,h,w} y_o², updated BEFORE use; r = y(y − θ).
    Returns (r, new θ)."""
    a = as_array(y)
    units = a.shape[1]
    old = np.full(units, theta_init) if theta is None else as_array(theta)
    new = old.copy()
    for o in range(units):
        new[o] = (1 - theta_rate) * old[o] + theta_rate * (a[:, o] ** 2).sum() / a[:, o].size
    r = np.zeros_like(a)
    for o in range(units):
        r[:, o] = a[:, o] * (a[:, o] - new[o])
    return as_tensor(r, y), as_tensor(new, y)


# ----- effective weights: presynaptic competition, Dale, weight norm ----------------------------
PRESYNAPTIC_DIMS = {"output": (0,), "input": (1,), "spatial": (2, 3), "global": (0, 1, 2, 3)}


def presynaptic(weight, kind="lp_norm", dim="spatial", eps=1e-6):
    """Eqs (39)–(42): m = 1/(|w| + ε) competes within each group of entries that share every index
    outside ``dim``: linear m/(Σm + ε), softmax e^m/Σe^m, lp_norm m/sqrt(Σm²)."""
    m = 1.0 / (np.abs(as_array(weight)) + eps)
    out = np.zeros_like(m)
    compete = PRESYNAPTIC_DIMS[dim]
    groups = {}
    for index in itertools.product(*[range(size) for size in m.shape]):
        key = tuple(i for d, i in enumerate(index) if d not in compete)
        groups.setdefault(key, []).append(index)
    for members in groups.values():
        values = [m[i] for i in members]
        if kind == "linear":
            total = sum(values) + eps
            result = [v / total for v in values]
        elif kind == "softmax":
            peak = max(values)
            exps = [math.exp(v - peak) for v in values]
            result = [e / sum(exps) for e in exps]
        elif kind == "lp_norm":
            norm = math.sqrt(sum(v * v for v in values))
            result = [v / norm for v in values]
        else:
            raise ValueError(kind)
        for i, value in zip(members, result):
            out[i] = value
    return as_tensor(out, weight)


def effective_weight(weight, dale=False, weight_norm=False, presynaptic_spec=None):
    """|W| under Dale, then W/‖W_o‖ with weight_norm, then presynaptic competition."""
    w = weight.abs() if dale else weight.clone()
    if weight_norm:
        for o in range(w.shape[0]):
            norm = math.sqrt(float((w[o] ** 2).sum()))
            if norm > 0:
                w[o] = w[o] / norm
    if presynaptic_spec is not None:
        w = presynaptic(w, presynaptic_spec.get("kind", "lp_norm"), presynaptic_spec.get("dim", "spatial"))
    return w


# ----- surround modulation ----------------------------------------------------------------------
def dog_kernel(size=5, sigma_e=1.2, sigma_i=1.4):
    """K(x,y) = (G_e/(2πσ_e²) − G_i/(2πσ_i²)) / K(0,0) on integer offsets (Nimmo §1.16)."""
    c = size // 2

    def raw(dx, dy):
        r2 = dx * dx + dy * dy
        return (math.exp(-r2 / (2 * sigma_e ** 2)) / (2 * math.pi * sigma_e ** 2)
                - math.exp(-r2 / (2 * sigma_i ** 2)) / (2 * math.pi * sigma_i ** 2))

    centre = raw(0, 0)
    return torch.tensor([[raw(dx, dy) / centre for dy in range(-c, c + 1)] for dx in range(-c, c + 1)],
                        dtype=torch.float64)


def surround(u, size=5, sigma_e=1.2, sigma_i=1.4):
    """Each feature map convolved with the DoG kernel, zero padding size//2 (same size out). The kernel is
    rounded to float32, as the layer keeps it (a float32 buffer, also in a float64 layer)."""
    kernel = as_array(dog_kernel(size, sigma_e, sigma_i).float())
    a = as_array(u)
    c = size // 2
    n_samples, units, height, width = a.shape
    out = np.zeros_like(a)
    for n in range(n_samples):
        for o in range(units):
            for h in range(height):
                for v in range(width):
                    total = 0.0
                    for i in range(size):
                        for j in range(size):
                            hh, vv = h + i - c, v + j - c
                            if 0 <= hh < height and 0 <= vv < width:
                                total += kernel[i, j] * a[n, o, hh, vv]
                    out[n, o, h, v] = total
    return as_tensor(out, u)


# ----- a whole layer ----------------------------------------------------------------------------
class ReferenceLayer:
    """The layer's training-mode update, step by step, with the loop references above.

    Holds the state the engine keeps in buffers (BCM θ, temporal history, adaptive thresholds) and its
    own copy of the weights, to which :meth:`apply` adds ``lr · ΔW`` (then |W| under Dale).
    """

    def __init__(self, weight, *, stride=1, padding=0, padding_mode="zeros", dilation=1, groups=1,
                 activation="dot", rule="instar", rule_options=None, competition="none",
                 competition_options=None, axis="channels", lebesgue_p=2.0, dale=False, weight_norm=False,
                 presynaptic=None, surround=None, update_norm="none"):
        self.weight = weight.detach().clone()
        self.stride, self.padding, self.padding_mode = pair(stride), pair(padding), padding_mode
        self.dilation, self.groups, self.activation = pair(dilation), groups, activation
        self.rule, self.rule_options = rule, dict(rule_options or {})
        self.competition, self.competition_options = competition, dict(competition_options or {})
        self.axis, self.lebesgue_p, self.dale, self.weight_norm = axis, lebesgue_p, dale, weight_norm
        self.presynaptic, self.surround, self.update_norm = presynaptic, surround, update_norm
        self.theta = self.history = self.threshold = None
        self.delta_w = torch.zeros_like(self.weight)

    def effective_weight(self):
        return effective_weight(self.weight, self.dale, self.weight_norm, self.presynaptic)

    def compete(self, u, x_padded, weight):
        name, options = self.competition, self.competition_options
        if name in VECTOR_COMPETITIONS:
            options = {**VECTOR_DEFAULTS.get(name, {}), **options}
            return per_site(u, VECTOR_COMPETITIONS[name], self.axis, 1 if self.axis == "space" else self.groups,
                            **options)
        if name == "temporal":
            y, self.history = temporal(u, self.history, options.get("window", 500), options.get("k", 1),
                                       options.get("square_winner", False))
            return y
        if name == "statistical":
            sim = similarity(x_padded, weight, self.stride, self.dilation, self.groups)
            return statistical(sim, options.get("k_std", 2.0), options.get("k", 1),
                               options.get("square_winner", False), self.groups)
        if name == "adaptive_threshold":
            y, self.threshold = adaptive_threshold(u, self.threshold, options.get("k", 1),
                                                   options.get("rate", 3.0), options.get("binary", True))
            return y
        raise ValueError(name)

    def step(self, x):
        """One training forward: returns (u, y, raw ΔW) and accumulates the normalised ΔW."""
        x_padded = pad(x, self.padding, self.padding_mode)
        weight = self.effective_weight()
        u = activation(x_padded, weight, self.activation, self.stride, self.dilation, self.groups,
                       self.lebesgue_p)
        if self.surround is not None:
            u = surround(u, **self.surround)
        y = self.compete(u, x_padded, weight)
        if self.rule == "bcm":
            r, self.theta = bcm(y, self.theta, **self.rule_options)
            s = None
        else:
            r, s = rule_factors(self.rule, y, u)
        delta = hebbian_update(x_padded, weight, r, s, self.stride, self.dilation, self.groups)
        if self.rule == "sanger":
            delta -= sanger_decay(y, weight)
        self.delta_w += normalize(delta, self.update_norm)
        return u, y, delta

    def apply(self, lr):
        self.weight += lr * self.delta_w
        if self.dale:
            self.weight = self.weight.abs()
        self.delta_w.zero_()


# ----- test settings ----------------------------------------------------------------------------
try:
    import pytest
except ImportError:  # the reference itself needs no pytest
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="module")
    def single_thread():
        """Tiny tensors: one intra-op thread is faster, and does not stall when the other core is busy."""
        from hebblib.runtime import single_thread as one_thread

        with one_thread():
            yield
