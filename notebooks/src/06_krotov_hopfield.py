# %% [markdown]
# # Chapter 6 — Krotov–Hopfield: competing hidden units
#
# **Objectives.** By the end of this chapter you can
#
# * compute p-norm currents and the Krotov–Hopfield ranking (winner $+1$, $k$-th $-\Delta$);
# * split the update into its Hebbian and normalisation terms, and explain why the weights end on the
#   p-sphere $\sum_i |W_{\mu i}|^p = 1$;
# * see why standardising the inputs helps the dynamics converge;
# * train Manzali's one-layer convolutional version on CIFAR-10.
#
# **What we reproduce.** Manzali's toy example (3 samples, 3 units, $p = 2$, $k = 2$, $\Delta = 0.4$,
# 200 iterations at $\eta = 0.1$): the spec's simulation counts **33 / 110 / 163** of 200 random
# initialisations converging with raw / per-sample / per-feature standardised inputs; we measure our
# own counts. Manzali's Table 1: one Krotov conv layer (3 → 96, 5×5, $p = 2$, $k = 9$, $\Delta = 0.08$)
# + a linear classifier reaches **66.21 %** on CIFAR-10 (65.22 / 63.08 / 58.86 / 45.45 % with 2–5
# layers). Quick mode trains the layer on the shipped subset, so its number is lower; full mode
# uses all of CIFAR-10.

# %% setup
import ipywidgets as widgets
import torch
from IPython.display import display

from hebblib.chapters import ch06_krotov_hopfield as ch6
from hebblib.notebook import check_exercise, setup, todo

device = setup(seed=0)

# %% [markdown]
# ## 1. Currents in the p-norm, and a ranking
#
# Krotov & Hopfield (2019) measure how well unit $\mu$ matches sample $v_b$ with a p-inner product:
#
# $$I_{\mu b} = \langle W_\mu, v_b\rangle_p = \sum_i \operatorname{sgn}(W_{\mu i})\,|W_{\mu i}|^{p-1}\, v_{bi} .$$
#
# For $p = 2$ it is the ordinary dot product. The competition ranks the units by their current, for
# each sample separately:
#
# $$g_{\mu b} = \begin{cases} 1 & \mu \text{ has the highest current for } b \\ -\Delta & \mu \text{ is ranked } k\text{-th} \\ 0 & \text{otherwise.}\end{cases}$$
#
# The winner learns the sample; the $k$-th is pushed away from it, so at most $k-1$ units can end up
# encoding similar patterns.
#
# ### Exercise 1: currents and activations for a batch
#
# `W` is (units, inputs) and `V` (samples, inputs). Return `torch.stack([I, g])`, both of shape
# (units, samples). (Hint: `W.sign() * W.abs().pow(p - 1)`; `I.topk(k, dim=0).indices` ranks the
# units of every sample.)

# %%
def krotov_signals(W, V, p, k, delta):
    """Currents I and ranking activations g of every unit for every sample, stacked."""
    # I = ...
    # g = ...
    return todo("compute the p-currents, then +1 for the top unit and −delta for the k-th of each sample")


# %%
# NBVAL_CHECK_OUTPUT
krotov_signals = check_exercise("Krotov currents and g", krotov_signals, ch6.krotov_signals_solution,
                                ch6.krotov_exercise_cases(), atol=1e-10)

# %% [markdown]
# ## 2. The update: a Hebbian term and a normalisation term
#
# $$\Delta W_{\mu i} = \underbrace{\sum_b g_{\mu b}\, v_{bi}}_{\text{Hebbian}} \;-\;
# \underbrace{\Big(\sum_b g_{\mu b}\, I_{\mu b}\Big) W_{\mu i}}_{\text{normalisation}},
# \qquad W \leftarrow W + \eta\, \Delta W .$$
#
# Where the average update vanishes, $\sum_b g v_b = (\sum_b g I)\, W$; multiply by
# $\operatorname{sgn}(W)|W|^{p-1}$ and sum over $i$: $\sum_b g I = (\sum_b g I) \sum_i |W_{\mu i}|^p$. So
# every unit that learns ends on the **p-sphere** $\sum_i |W_{\mu i}|^p = 1$, without any explicit
# projection. In hebblib this is the SoftHebb rule ($r = g$, $s = g\,I$) with `competition="krotov"`
# and `lebesgue_p=p`.
#
# The slides' toy batch, $v_1 = (0.1, 0.2, 0.3, 0.4)$, $v_2 = (0.1, 0.3, 0.3, 0.1)$,
# $v_3 = (0.4, 0.1, 0.1, 0.4)$, three units with $W \sim \mathcal{N}(0, 1)$, one step in full:

# %%
ch6.toy_step_figure(seed=ch6.TOY_SEED, normalisation="none")

# %% [markdown]
# ## 3. 200 iterations, and what standardisation changes
#
# Run the same initialisation for 200 iterations at $\eta = 0.1$. On the raw inputs one unit matches
# the (all-positive) samples best and wins all three; the last unit is never first nor $k$-th, never
# learns, and stays off the sphere. Standardising each input over the batch (a BatchNorm, as
# Manzali's library has inside every layer) centres the samples; their winners now differ, and all
# three units converge:

# %%
ch6.toy_runs_figure(seed=ch6.TOY_SEED)

# %% [markdown]
# The hand-written dynamics above and the library's `HebbianLinear(4, 3, rule="softhebb",
# competition="krotov", lebesgue_p=2, update_norm="none")` take the same 200 steps:

# %%
# NBVAL_CHECK_OUTPUT
difference = ch6.library_toy_difference(seed=ch6.TOY_SEED)
print(f"HebbianLinear equals the hand-written dynamics after 200 steps (to 1e-12): {difference < 1e-12}")

# %% [markdown]
# How often does it converge? 200 random initialisations (seed 1), the same for all three input
# normalisations; converged = every unit within 0.05 of the p-sphere after 200 iterations:

# %%
# NBVAL_CHECK_OUTPUT
counts = ch6.convergence_counts(runs=200, seed=1)
for norm in ch6.NORMALISATIONS:
    print(f"inputs {norm:11s}: {counts[norm]:3d}/200 converged | spec [SIM]: {ch6.SPEC_COUNTS[norm]:3d}/200")

# %% [markdown]
# ### Interactive demo: p, k and Δ
#
# The toy again, for any $p$, $k$ and $\Delta$: the distance to the p-sphere of each unit
# (initialisation `TOY_SEED`), the learned weights, and the final $\sum_i|W_{\mu i}|^p$ of every unit
# over 50 other initialisations. Runs that blow up are stopped and reported.
#
# *Questions.*
# 1. Manzali: convergence is very difficult for $\Delta > 0.2$. Do you see it here?
# 2. With $k = 3$ the last-ranked unit is the anti-Hebbian one. How does that change the count?
# 3. Raise $p$. Which weights survive on the p-sphere as $p$ grows, and what happens to the currents
#    of large weights?

# %%
from hebblib.notebook import live_demo  # controls + a figure that is redrawn whenever a control moves

demo = live_demo(
    ch6.toy_demo,
    p=widgets.FloatSlider(value=2.0, min=1.0, max=10.0, step=0.5, description="p"),
    k=widgets.IntSlider(value=2, min=2, max=3, description="k"),
    delta=widgets.FloatSlider(value=0.4, min=0.0, max=1.0, step=0.02, description="Δ"),
    normalisation=widgets.Dropdown(options=list(ch6.NORMALISATIONS), value="per_feature", description="inputs"),
    seed=widgets.fixed(ch6.TOY_SEED), runs=widgets.fixed(50),
)
display(demo)

# %% [markdown]
# ## 4. The convolutional version
#
# A conv kernel is the same unit applied to every patch (Chapter 4). Unfold the patches, and each
# patch of each image is a sample of the toy: the currents are one convolution with
# $\operatorname{sgn}(W)|W|^{p-1}$, the competition ranks the kernels at every patch, and the
# Hebbian term is the conv-shaped sum of patches weighted by $g$. Manzali's BioConv2d also divides
# $\Delta W$ of each kernel by its own largest entry (`update_norm="per_filter"`), so $\eta$ is the
# largest change of any weight of a kernel per step.

# %%
# NBVAL_CHECK_OUTPUT
print(ch6.krotov_conv(p=2.0, k=9, delta=0.08))
gap = ch6.conv_versus_patches(seed=0, p=3.0, k=3, delta=0.2)
print(f"conv layer's raw ΔW equals the toy formulas on the unfolded patches (to 1e-10): {gap < 1e-10}")

# %% [markdown]
# ## 5. Experiment: one Krotov layer on CIFAR-10
#
# Manzali's one-layer network (spec §3.6, Table 1): BN(3) → Krotov conv 3→96, 5×5 ($p = 2$, $k = 9$,
# $\Delta = 0.08$) → ReLU → MaxPool 2 → BN(96) → Dropout(0.2) → Linear, pixels on [0, 1] (the BNs
# normalise). The learning rate decays every batch from 0.007 towards $10^{-4}$,
# $\eta(t) = \eta_\text{end} - (\eta_\text{end} - \eta_\text{start})\,e^{-0.8\,t/T}$ ($T$ batches per
# epoch), and training stops once $\max_\mu|\sum_i|W_{\mu i}|^p - 1| \le 0.01$. The read-out: in quick
# mode the pipeline's linear probe (Adam at $10^{-4}$: on 18,816 features the default $10^{-3}$
# overshoots) after 2 Hebbian epochs from the unit sphere; in full mode Manzali's protocol: the
# kernels start from $\mathcal{N}(0, 1)$ as in biopytorch, 2 Hebbian epochs, then
# `ch6.manzali_classifier`: SGD with momentum 0.9 from 0.05 with cosine warm restarts (cycles of 10
# and 20 epochs) on standardised features, with random crops and flips, for 30 epochs. On all of
# CIFAR-10 the read-out's augmentation matters by several points (`scripts/ch06_ablation.py`); the
# committed full-data run is printed in the summary.

# %%
result = ch6.run_one_layer(seed=0)
print(f"{result['n_train']:,} training images, {result['epochs_run']} Hebbian epoch(s), "
      f"{len(result['hebbian_history'])} batches; test {result['n_test']:,} images")
print(f"test accuracy: final {result['final_test_acc']:.1f} %, at the best validation epoch "
      f"{result['test_acc_at_best_val']:.1f} %")

# %%
ch6.training_figure(result["hebbian_history"])

# %% [markdown]
# The kernels (each min–max normalised). The updates stay near the unit sphere while the kernels turn
# from random towards colour blobs and gradients; with few batches (quick mode) much of the random
# start is still visible. Manzali's Fig 20 shows them after 2 epochs of 40,000 images.

# %%
ch6.filters_figure(result["layer"], n=48)

# %% [markdown]
# ## 6. Depth: one to five Krotov layers
#
# Manzali stacked the rule as in Amato et al. (2019): the one-layer block above, then conv 128 3×3, conv 192
# 3×3 → MaxPool 2, conv 256 3×3, and a Krotov linear layer of 300 units, each behind a BatchNorm, the
# classifier attached after layer $n = 1 \dots 5$ ($p$, $k$, $\Delta$ and dropout tuned per depth). His test
# accuracy falls from 66.21 % to 45.45 %: the rule has no way to know which features the classifier will need.
# The library builds the same stacks (`krotov_hopfield(depth=n)`, presets `manzali_1` … `manzali_5`) and runs
# them through the pipeline (two Hebbian epochs at constant $\eta$, then the pipeline's Adam read-out, not his
# 150 SGD epochs); the full-data runs of three seeds are committed in `docs/results/`, and this cell prints
# their mean and spread:

# %%
depth_rows = ch6.depth_curve()
ch6.depth_lines(depth_rows)

# %%
ch6.depth_figure(depth_rows)

# %% [markdown]
# ## Summary
#
# * Krotov–Hopfield: p-norm currents, a ranking with one Hebbian winner and one anti-Hebbian
#   $k$-th unit, and a decay term that puts every learning unit on the p-sphere.
# * The dynamics can stall when one unit wins everything; standardising the inputs per feature
#   makes most initialisations converge.
# * The conv version is the same rule on every patch, computed as convolutions.
# * Stacked without any top-down signal, the layers lose accuracy with depth; the error bars show how
#   much the deeper stacks depend on the seed (where a few units take most of a layer's wins).
#
# The measured numbers beside the published ones:

# %%
ch6.report_lines(counts, result)
ch6.depth_lines(depth_rows)
