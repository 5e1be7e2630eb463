# %% [markdown]
# # Chapter 3 — Competition: winner-take-all, dead units and homeostasis
#
# **Objectives.** By the end of this chapter you can
#
# * explain why units without competition all learn the same thing, and how a hard winner-take-all
#   (WTA) splits the data between them;
# * show that Instar + hard WTA is online k-means;
# * recognise dead units, and revive them with Miconi's homeostatic adaptive thresholds;
# * train 64 units on CIFAR-10 patches and see edge-like and colour-opponent filters appear, when
#   the patches are whitened.
#
# **What we reproduce.** The thesis's expectation is qualitative: hard WTA with cosine similarity on
# ZCA-whitened patches learns clearer edge and colour-opponent filters than on raw patches (Nimmo
# §3.1.2: whitening is "crucial" for hard WTA); Miconi's thresholds prevent dead units (Miconi §2.3).
# We measure the k-means error of the prototypes, the dead-unit fraction and the usage entropy
# (our metrics, `hebblib.diagnostics`).

# %% setup
import ipywidgets as widgets
import torch
from IPython.display import display

from hebblib.chapters import ch03_competition as ch3
from hebblib.notebook import check_exercise, setup, todo
from hebblib.runtime import quick_or

device = setup(seed=0)  # these small layers train on the CPU

# %% [markdown]
# ## 1. Hard winner-take-all: only the best match learns
#
# Give several Instar units the same input. Without competition each one follows
# $\Delta w_o = \eta\, y_o (x - w_o)$ on *all* the data and they all drift to the same weighted mean
# (Chapter 1): the layer learns one thing many times. A hard WTA lets only the most active unit
# learn (Nimmo eqs 25–29):
#
# $$i^* = \arg\max_o u_o, \qquad m_o = [o = i^*], \qquad
# y_o = m_o \ \text{(binary, eq 28)} \quad\text{or}\quad y_o = u_o\, m_o \ \text{(activity-masked, eq 29)}.$$
#
# With the binary output each winner takes a step towards the input it won,
# $w_{i^*} \leftarrow w_{i^*} + \eta (x - w_{i^*})$: exactly the online k-means update. The activity
# $u_o$ here is the **cosine** between $w_o$ and $x$ (Lagani/Amato, used in all the thesis's hard-WTA
# runs), so the winner is the unit pointing most nearly at the input, whatever its length. With
# $k$ winners (k-WTA) the top $k$ units all learn.
#
# ### Exercise 1: the hard-WTA mask
#
# Complete `hard_wta`: a mask with 1 at the $k$ largest entries of each row of `u` (along dim 1) and 0
# elsewhere; return the mask itself (eq 28) when `binary`, else `u * mask` (eq 29).
# (Hint: `u.topk(k, dim=1).indices` and `torch.zeros_like(u).scatter_(1, indices, 1.0)`.)

# %%
def hard_wta(u, k=1, binary=True):
    """u: activations (N, units) or (N, units, H, W). Returns y with the shape of u."""
    # mask = ...
    return todo("build the top-k mask along dim 1; return mask if binary else u * mask")


# %%
# NBVAL_CHECK_OUTPUT
hard_wta = check_exercise("hard-WTA mask", hard_wta, ch3.hard_wta_solution, ch3.mask_exercise_cases())

# %% [markdown]
# Five units on five clusters, cosine competition, binary outputs. Your mask plugs into the layer as a
# competition (`FunctionCompetition`), and gives the same prototypes as the library's `hard_wta`:

# %%
fig, kmeans = ch3.kmeans_section(seed=0)
fig

# %%
# NBVAL_CHECK_OUTPUT
data, _, _, means = ch3.ring_clusters(seed=0)
mine = ch3.train_prototypes(data, units=5, seed=0, competition=ch3.FunctionCompetition(hard_wta, k=1, binary=True))
print(f"largest |cluster mean − nearest prototype| = {kmeans['kmeans_error']:.2f}")
print(f"your mask gives the library's prototypes: "
      f"{ch3.kmeans_error(mine.final, means) == kmeans['kmeans_error']}")

# %% [markdown]
# *Think.* k-means proper assigns each point to the *nearest* prototype, $\arg\min_o \|x - w_o\|$.
# When does the unit with the largest cosine coincide with the nearest prototype, and when not?
#
# ## 2. Dead units and homeostatic thresholds
#
# Switch the competition criterion to the plain dot product $u_o = w_o\cdot x$. A unit that starts
# pointing away from the data never wins, so it never learns; meanwhile the winners' weights grow to
# the size of the data and win even more. Dead units waste capacity; `hebblib.diagnostics` counts
# them (the dead-unit fraction) beside the usage entropy $H = -\sum_o p_o \log p_o / \log N$ of the
# win rates $p_o$ (1 when all units win equally often).
#
# Miconi's remedy is homeostasis: each unit has a threshold $\theta_o$, subtracted before the
# competition, which follows the unit's firing rate towards its fair share $k/N$:
#
# $$y = \text{kWTA}(u - \theta), \qquad \theta_o \leftarrow \theta_o + \text{rate}\,\big(\overline{y_o} - k/N\big).$$
#
# A unit that wins too little sees its threshold fall until it starts winning; one that wins too much
# is held back. (`competition="adaptive_threshold"` in the library.)

# %%
fig, dead = ch3.dead_units_section(threshold_rate=0.2, seed=0)
fig

# %%
# NBVAL_CHECK_OUTPUT
for name in ("plain", "homeostatic"):
    d = dead[name]
    print(f"dot product, {name:11s}: dead {100 * d['dead_fraction']:.0f}%, usage entropy {d['entropy']:.2f}, "
          f"k-means error {d['kmeans_error']:.2f}")

# %% [markdown]
# ### Interactive demo: how many winners, how much homeostasis?
#
# The figure retrains the units each time a control moves (about a second).
#
# *Questions.*
# 1. Raise $k$ from 1 to 5 with five units. Where do the prototypes go, and why? (Miconi found that
#    larger $k$ gives larger, blurrier receptive fields.)
# 2. With the dot product and 5 units, what is the smallest threshold rate that revives the dead unit?
# 3. Use 8 units on 5 clusters with and without thresholds. Homeostasis forces an equal share on
#    every unit: what does that do to the clusters?
# 4. At rate 0 the thresholds never move: which competition is that?

# %%
from hebblib.notebook import live_demo  # controls + a figure that is redrawn whenever a control moves

units = widgets.IntSlider(value=5, min=1, max=10, description="units")
k = widgets.IntSlider(value=1, min=1, max=units.value, description="k winners")
widgets.dlink((units, "value"), (k, "max"))  # at most as many winners as units
demo = live_demo(
    ch3.prototypes_demo, k=k,
    threshold_rate=widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="θ rate"),
    activation=widgets.Dropdown(options=ch3.ACTIVATIONS, value="cosine", description="u ="),
    units=units, epochs=widgets.fixed(10), seed=widgets.fixed(0),
)
display(demo)

# %% [markdown]
# ## 3. Natural image patches: filters from competition
#
# The same layer, 64 units with cosine activity and hard WTA (activity-masked, eq 29), now learns from
# 5×5 colour patches of the shipped CIFAR-10 images (75 inputs). Each unit becomes the (activity-
# weighted) mean of the patches it wins. Natural patches are dominated by smooth, strongly correlated
# pixels; ZCA whitening (Chapter 0) removes those correlations, so the competition is decided by
# edges and colour contrasts rather than by overall brightness. Filters are drawn with grey at zero,
# sorted from the unit that wins most to the one that wins least (reading order).

# %%
epochs = quick_or(3, 2)
fig, patch_stats, patch_runs = ch3.patches_section(n_patches=quick_or(100_000, 20_000), epochs=epochs)
fig

# %%
# NBVAL_CHECK_OUTPUT
ch3.print_patch_table(patch_stats)

# %% [markdown]
# On whitened patches the units learn oriented edges, corners and colour-opponent pairs (red–cyan,
# green–purple, blue–orange), as Miconi reports for his first layer; every unit wins some patches.
# On raw patches a few units take the smooth brightness and colour blobs, and a large part of the
# layer never moves from its random start. Adaptive thresholds (rate 0.2, right) put every unit to
# work on raw patches too, but the extra units mostly split the same smooth blobs and gradients:
# homeostasis fixes who learns, whitening fixes what there is to learn.
#
# ## 4. Anti-Hebbian learning for the losers
#
# Hard WTA ignores the losers. Anti-Hebbian learning (Nimmo eq 31, $\Delta w = -\eta\, y\, x$) pushes a
# loser *away* from the input it lost, to decorrelate the units. Applied to *every* loser (Nimmo's
# 'antihard' mode) the push comes 63 times for each pull; applied only to the runner-up with a
# small weight (−0.4, the Krotov–Hopfield ranking of a later chapter) it is gentler. Same whitened
# patches, same 64 units:

# %%
anti = ch3.anti_hebbian_section(patch_runs["whitened"][1], hard_wta_layer=patch_runs["whitened"][0], epochs=epochs)

# %%
# Not compared by nbval: 63 pushes per pull make the 'all losers' run chaotic, so its row differs in
# the second digit between CPUs (AVX2 / AVX-512 rounding); tests check the ordering the text relies on.
ch3.print_patch_table(anti)

# %% [markdown]
# *Think.* Why does pushing every loser away make the units' responses *more* correlated, not less?
# (Look at the mean $\|w\|$ column and at which inputs every loser is pushed away from.) SoftHebb
# (Chapter 5) keeps anti-Hebbian learning for all losers but weights it by a softmax, so that only the
# near-winners are pushed.
#
# ## Summary
#
# * Competition makes units specialise: Instar + hard WTA (binary) is online k-means, and its
#   prototypes land on the cluster means.
# * Units that never win never learn. Homeostatic thresholds give every unit its share and revive
#   them.
# * On whitened natural patches the same mechanism learns edge-like and colour-opponent filters, with
#   every unit in use; on raw patches most units stay dead.
#
# The chapter's numbers beside their targets:

# %%
# NBVAL_CHECK_OUTPUT
ch3.print_checks(ch3.summary_rows(kmeans, dead, patch_stats))
