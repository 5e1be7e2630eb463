# %% [markdown]
# # Chapter 8 — BCM: a sliding threshold and selectivity
#
# **Objectives.** By the end of this chapter you can
#
# * write the BCM update and its sliding threshold $\theta$;
# * explain why a threshold that follows $E[y^2]$ makes a neuron selective, and why it must move fast;
# * compare BCM with Instar in the hard-WTA network: thresholds per channel, weight distributions,
#   accuracy; and combine it with the surround kernel of Chapter 7 (Nimmo's `optimal`).
#
# **What we reproduce.** A single BCM neuron shown three patterns ends up answering only one of them
# (selectivity > 0.9). In the network, the README reports **75.3 %** for `bcm` and **76 %** for `optimal`
# (hard WTA + BCM + surround), against **74.8 %** for the Instar baseline `hard_basic` (the thesis: BCM
# 71.1 %, weights with a sharp peak at zero and heavy tails, Fig 12). In quick mode the networks are
# *reduced* (first block, width × 0.25, 900 subset images), so their accuracies are far lower.

# %% setup
import ipywidgets as widgets
import torch
from IPython.display import display

from hebblib import experiments as ex
from hebblib.chapters import ch08_bcm as ch8
from hebblib.notebook import check_exercise, print_summary, setup, todo

device = setup(seed=0)  # the reduced runs of quick mode train on the CPU

# %% [markdown]
# ## 1. A threshold that slides with the activity
#
# Instar and Oja stabilise Hebbian growth with a decay term. BCM (Bienenstock, Cooper & Munro 1982)
# has none: the sign of the update depends on whether the response is above or below a threshold,
# and the threshold follows the recent mean of $y^2$ (Nimmo eq 23, §3.3.6):
#
# $$\theta \leftarrow (1-\tau)\,\theta + \tau\, E[y^2], \qquad \Delta w = \eta\, x\, y\,(y - \theta).$$
#
# Responses above $\theta$ are potentiated (LTP), weaker ones depressed (LTD). A neuron that answers
# every input strongly drives $E[y^2]$, hence $\theta$, up, until only its best input still clears
# the bar; the others are pushed to zero. Because $\theta$ grows with the *square* of the activity it
# catches up with any growth of $y$, provided it moves fast enough. In the code θ is updated first,
# then used in the same step; the network's θ starts at 1, one per channel.
#
# ### Exercise 1: one BCM step
#
# Complete `bcm_step` for a linear neuron $y = w\cdot x$: update θ towards $y^2$ with rate
# `theta_rate`, then return the new weights.

# %%
def bcm_step(w, x, theta, lr, theta_rate):
    """w, x: 1-D tensors; theta, lr, theta_rate: numbers. Returns the new w."""
    # y = ...; theta = ...
    return todo("compute y, move theta towards y**2, then w + lr * x * y * (y - theta)")


# %%
# NBVAL_CHECK_OUTPUT
bcm_step = check_exercise("BCM step", bcm_step, ch8.bcm_step_solution, ch8.bcm_exercise_cases())

# %% [markdown]
# A rectified neuron $y = \max(0, w\cdot x)$ sees three overlapping patterns in random order (τ = 0.05,
# η = 0.02). At BCM's fixed point for one pattern out of three, $\theta = E[y^2] = y^2/3$ and
# $y = \theta$, so the response it keeps is $y = 3$:

# %%
toy = ch8.toy_neuron(theta_rate=0.05, lr=0.02, steps=3000, seed=0)
ch8.toy_figure(toy)

# %%
# NBVAL_CHECK_OUTPUT
print(f"responses at the end: {[round(float(v), 2) for v in toy['responses'][-1]]}; "
      f"selectivity {toy['selectivity']:.2f}")

# %% [markdown]
# ### Interactive demo: how fast must the threshold move?
#
# *Questions.*
# 1. Lower the threshold rate τ towards 0.0001 with η = 0.1. What happens, and why does the thesis
#    say the threshold "must grow faster than the postsynaptic activity"?
# 2. At τ = 1, θ is the square of the last response alone. Is the neuron still selective? Why not?
# 3. Change the seed: which pattern wins, and what decides it?

# %%
from hebblib.notebook import live_demo  # controls + a figure that is redrawn whenever a control moves

demo = live_demo(
    ch8.toy_demo,
    theta_rate=widgets.FloatLogSlider(value=0.05, base=10, min=-4, max=0, step=0.25, description="τ (θ rate)"),
    lr=widgets.FloatLogSlider(value=0.02, base=10, min=-3, max=-1, step=0.25, description="η"),
    steps=widgets.IntSlider(value=3000, min=10, max=6000, step=10, description="steps"),
    seed=widgets.IntSlider(value=0, min=0, max=9, description="seed"),
)
display(demo)

# %% [markdown]
# ## 2. BCM in the hard-WTA network
#
# In the network the output of a unit is the hard-WTA-masked cosine activity (Chapter 3), and θ is
# one number per channel, the mean of $y^2$ over the batch and all positions (zeros where the channel
# lost included). The 2025 code uses τ = 0.3, 0.35, 0.35 for the three layers. `optimal` adds the
# surround kernels of Chapter 7. Three runs on the same images, seed and probe: Instar (`hard_basic`),
# BCM (`bcm`) and BCM + surround (`optimal`). Quick mode: **reduced runs** (first block, width × 0.25,
# 900 subset images, 10 probe epochs); full mode: the presets on all of CIFAR-10.

# %%
runs, thetas = ch8.train_bcm_runs()
ex.print_runs(runs)

# %%
ch8.theta_figure(thetas.trajectories(), runs["hard WTA + BCM"].layer().rule.theta.detach().cpu())

# %% [markdown]
# Each channel's θ falls from its start at 1 towards the mean square of its own masked response:
# channels that win often keep a high threshold, rare winners a low one, so they are easy to
# potentiate when they do win. Now the weights: BCM has no decay term pulling $w$ towards the inputs, so
# its filters are not averages of patches.

# %%
ch8.weight_histograms(runs)

# %%
ch8.print_weight_table(runs)

# %%
ex.filters_side_by_side(runs)

# %% [markdown]
# *Think.* Instar moves each winner towards the mean of the patches it wins; BCM potentiates only the
# inputs of responses above θ and depresses the rest. Which of the two should give a sharp peak of
# weights near zero, and which a broad distribution? (Compare with the thesis's Figs 11 and 12.) The
# accuracies of a reduced first block need not rank like those of the full network: the README's
# difference between `bcm` and `hard_basic` is half a point, far less than the spread of a run this
# small.
#
# ### A pitfall found on the full data: θ's starting value and the corrected cosine
#
# On all of CIFAR-10 the corrected `optimal` preset ends about four points below the README's 76 %, and below
# `hard_basic` (three seeds each; the committed lines under the summary, and `docs/results.md`). Reduced
# 3-block runs at half width on the 2,000 subset images, two seeds each (`python scripts/reduced_compare.py
# hard_basic bcm optimal --original bcm optimal --seeds 2`), point at one cause: max probe accuracy
# `hard_basic` 46.2 %, `bcm` 33.5 %, `optimal` 39.0 %, but `bcm --original` 45.9 % and `optimal --original`
# 46.3 %. The original code's per-tap "cosine" lets $y$ reach $k$ (5 or 3), the true cosine keeps $y \le 1$,
# and θ starts at 1: with the true cosine every winner begins below θ, so the first updates are all LTD and
# push the filters *away* from the data, with no decay term to undo it.
#
# Does it last? Over 20,000 images of the full CIFAR-10 (625 updates; 2 blocks at half width, two
# seeds, `... bcm optimal --blocks 2 --train 20000 --test 2000 --source full --seeds 2`) the corrected
# and the original cosine are level (`bcm` 63.4 % against 62.9 % for `--original`, one seed), but
# starting θ at 0 (`--change '{"rule": {"theta_init": 0.0}}'`) still gains about two points: `bcm`
# 63.4 → 65.8 %, `optimal` 62.7 → 64.5 %. In the same runs `hard_basic` reaches 67.1 %, so the start
# explains part of the full-data gap, not all of it. *Question:* what starting θ matches the
# original's scale of $y$, and why does a start of 0 not help the original?
#
# ## Summary
#
# * BCM replaces the decay term by a threshold that follows $E[y^2]$: above it LTP, below it LTD.
# * A single neuron becomes selective to one pattern, with $y = \theta$ on it; a threshold that moves
#   too slowly lets the activity run away.
# * In the network each channel has its own θ; combined with hard WTA and the surround kernel it gives
#   Nimmo's best hard-WTA result (`optimal`, README 76 %).
#
# Measured beside published (the quick-mode figures come from the reduced runs):

# %%
# NBVAL_CHECK_OUTPUT
ch8.print_checks([r for r in ch8.summary_rows(toy, runs) if r[3] is not None])

# %%
print_summary([r for r in ch8.summary_rows(toy, runs) if r[3] is None])
ex.report_preset("hard_basic", runs["hard WTA + Instar"])
ex.report_preset("bcm", runs["hard WTA + BCM"])
ex.report_preset("optimal", runs["optimal (BCM + surround)"])

# %% [markdown]
# **Two variants of `optimal` on all of CIFAR-10** (the same three seeds, split and probe as the committed
# `optimal` line above), to see what explains its gap to the README: θ starting at 0
# (`--change '{"hebbian": {"rule": {"theta_init": 0.0}}}'`), and the original code's per-tap cosine
# (`--original`). *Question:* which of the two closes more of the gap, is either difference larger than
# the spreads, and what is left of the gap with the original behaviour?

# %%
ch8.report_full_variants()
