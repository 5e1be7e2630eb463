# %% [markdown]
# # Chapter 14 — Backprop, Hebbian, and the mix of the two
#
# **Objectives.** By the end of this chapter you can
#
# * write the two ways a weight can learn, the gradient of a loss (backprop) and a Hebbian update, as one
#   gradient that a torch optimiser descends, mixed by a single number α;
# * train the SoftHebb network end to end at any α and see what α does to its filters and its accuracy;
# * read what each way costs: images per second and peak memory of a Hebbian step against a backprop step.
#
# **What we reproduce.** Nimmo's thesis compares its Hebbian networks with an end-to-end backprop twin
# (the `backprop` preset: **77 %** published in the code README), and its code mixes the two with
# `weight.grad = (1 − α)·grad_BP − α·ΔW_Hebb`, a line the thesis never ran at α < 1: no published number
# exists for the mix. We print the committed measurements: an α sweep on a reduced but real setting (two
# seeds), the full-data runs of `backprop`, `soft` and `optimal` beside their published numbers, and the cost
# of each kind of step measured by the library's bench. Quick mode trains ⅛-width networks on a few hundred
# subset images for the demo, so its accuracies are far below all of these by design.

# %% setup
import ipywidgets as widgets
import torch
from IPython.display import Image, display

from hebblib.chapters import ch14_backprop_hybrid as ch14
from hebblib.notebook import check_exercise, print_checks, setup, todo

device = setup(seed=0)

# %% [markdown]
# ## 1. Two updates, one gradient
#
# **Backprop** changes every weight against the gradient of the network's loss (the cross-entropy $L$ of
# the labels): $\;\texttt{weight.grad} = \nabla_W L = \mathrm{grad}_\text{BP}$, and an optimiser (Adam here)
# steps along $-\texttt{weight.grad}$.
#
# A **Hebbian** layer computes its own update $\Delta W$ from its input and output only (chapters 1–6: for
# SoftHebb $\Delta w_o \propto y_o\,(x - u_o w_o)$, divided by its largest entry), and moves *along* it, at a
# per-unit rate $\eta_o$ (SoftHebb's radius rule $\eta_o = (|\,\|w_o\| - 1\,| + 10^{-10})^{0.5}$, chapter 5).
# Written as a gradient that the optimiser descends, that is $\texttt{weight.grad} = -\eta_o\,\Delta W$.
#
# Nimmo's code puts both into one line (spec nimmo-thesis §1.0):
#
# $$\texttt{weight.grad} \;=\; (1-\alpha)\,\mathrm{grad}_\text{BP} \;-\; \alpha\,\eta_o\,\Delta W_\text{Hebb},
# \qquad \alpha = 0:\ \text{backprop}, \quad \alpha = 1:\ \text{Hebbian}.$$
#
# One forward pass in training mode gives both: the cross-entropy's gradient by `loss.backward()`, and each
# Hebbian layer's $\Delta W$, which the layer accumulates on the side (under `no_grad`). The classifier head
# has no Hebbian rule, so it always learns by backprop. At α = 1 the Hebbian layers move along their Hebbian
# update while the head trains on top of them, but by Adam's steps (about the learning rate, 10⁻³, per weight
# and step), not by the Hebbian phase's $W \leftarrow W + \eta_o\,\Delta W$.
#
# ### Exercise 1: the mixed gradient
#
# Complete `mixed_gradient(grad_bp, delta_w, alpha, unit_rates)`: `grad_bp` and `delta_w` have the shape of a
# conv weight (units, channels, k, k); `unit_rates` holds one $\eta_o$ per unit (dim 0).

# %%
def mixed_gradient(grad_bp, delta_w, alpha, unit_rates):
    rates = unit_rates.view(-1, 1, 1, 1)  # one rate per unit, broadcast over its weights
    return todo("(1 − α)·grad_BP − α·η_o·ΔW")


# %%
# NBVAL_CHECK_OUTPUT
mixed_gradient = check_exercise("mixed gradient", mixed_gradient, ch14.mixed_gradient_solution,
                                ch14.mixed_gradient_cases())
print("matches the library's HebbianConv2d.hebbian_grad(alpha) on every case:",
      all(torch.allclose(mixed_gradient(g, d, a, ch14.unit_rates(w)), ch14.library_mixed_gradient(w, g, d, a))
          for w, g, d, a in ch14.library_cases()))

# %% [markdown]
# *Think.* Adam divides each parameter's step by a running estimate of its gradient's size. If
# $\mathrm{grad}_\text{BP}$ and $\Delta W$ had very different sizes, what would α = 0.5 mean under Adam? (The
# demo below shows the two terms' sizes in each run.)
#
# ## 2. Moving α: one network, five ways to train it
#
# `hybrid_soft` is the `soft` network (three SoftHebb conv layers) trained end to end exactly as the
# `backprop` preset (Adam 1e-3, batch 64, flips), with the α-mix in every Hebbian layer
# (`supervised.mode = "hybrid"`, `supervised.alpha`; `hebblib/hybrid.py`). Here each α is one run of the
# library's pipeline (`run_preset`), from the same initial weights and on the same batches. Quick mode:
# ⅛ width (12/48/192 channels), 540 subset training images, 2 epochs, α = 0, 0.5 and 1. Full mode: the
# committed sweep's setting, five α (its runs are read back from `runs/alpha_sweep/` when they are there).

# %%
setting = ch14.sweep_setting()
runs = ch14.hybrid_sweep(setting, seed=0)
ch14.print_sweep_runs(runs, setting)

# %% [markdown]
# ### Interactive demo: what does α do to the filters?
#
# Move α. From left to right: how the first layer's filters moved from their initialisation in the run
# trained at that α (or the filters themselves); the test accuracy of every run per epoch; the *direction*
# of each run's change of conv1, as its cosine with the change of the α = 0 run (backprop) and of the α = 1
# run (Hebbian); and the two terms of the run's `weight.grad` per layer, $(1-\alpha)\,\|\mathrm{grad}_\text{BP}\|$
# against $\alpha\,\|\Delta W\|$ (mean norm per step in the last epoch; $\Delta W$ before the rate $\eta_o$).
# *Questions.* 1. The SoftHebb initialisation has $\|w_o\| \approx 25$: why do the learned filters look like
# the initial ones after a few hundred Adam steps? 2. Do backprop and the Hebbian rule push conv1 the same
# way? Where does α = 0.5 go? 3. Which term dominates `weight.grad` at α = 0.5, and in which layer? Does the
# accuracy follow any of this?

# %%
from hebblib.notebook import live_demo  # controls + a figure that is redrawn whenever a control moves

demo = live_demo(
    lambda alpha, view: ch14.alpha_demo(runs, alpha, view),
    alpha=widgets.SelectionSlider(options=list(runs), value=0.5 if 0.5 in runs else list(runs)[0],
                                  description="α"),
    view=widgets.Dropdown(options=list(ch14.VIEWS), value=ch14.VIEWS[1], description="show"),
)
display(demo)

# %% [markdown]
# ## 3. The measured α sweep
#
# `scripts/alpha_sweep.py` trains `hybrid_soft` at α = 0, 0.25, 0.5, 0.75 and 1 on a reduced but real
# setting: a quarter of SoftHebb's width, the first 2,500 CIFAR-10 training images (10 % of them the
# validation split), the first 1,000 test images, 3 end-to-end epochs, seeds 0 and 1. Its figure (error bars:
# the sample standard deviation over the seeds; dots: each seed), and its numbers, printed from its JSON:

# %%
record = ch14.sweep_record()
if ch14.sweep_figure_path().is_file():
    display(Image(filename=str(ch14.sweep_figure_path())))
ch14.print_sweep_record(record)

# %% [markdown]
# The full-data runs beside the published numbers: the backprop twin, the two Hebbian presets whose
# network the hybrids share (one Hebbian epoch, then a linear head), and the α-hybrid itself (no published
# number; each line says whether it has been measured, and how to measure it). These are 45,000 training
# images, 20 epochs and the full width: not comparable with the reduced sweep above.

# %%
ch14.print_full_data_rows()

# %% [markdown]
# ## 4. What each way costs
#
# A Hebbian step is one forward pass without an autograd graph, then $W \leftarrow W + \eta\,\Delta W$; a
# backprop step keeps every activation for the backward pass and Adam keeps two more numbers per weight;
# the α-hybrid does both in one forward. The library's bench (`python -m hebblib bench --phases`) times the
# three steps on the full `soft` network, each in a fresh process, and records peak memory; the committed
# measurement:

# %%
ch14.print_costs(ch14.costs_record())

# %% [markdown]
# The Hebbian presets need their expensive step for **one** epoch (then a cached-feature linear head), the
# end-to-end ones for twenty: the gap per run is far larger than the gap per step.
#
# ## Summary
#
# * One line, `weight.grad = (1 − α)·grad_BP − α·η_o·ΔW`, turns a Hebbian network into a backprop one and
#   anything in between; α = 0 is backprop bit for bit, α = 1 the Hebbian rule with a backprop head.
# * On the reduced setting, compare the spread of the sweep's means with the spread of its seeds (the line
#   under its table) before reading a trend into it; the full-data figures say how far one Hebbian epoch
#   gets against 20 backprop epochs.
# * A Hebbian step needs no graph: less memory per step, and one epoch instead of twenty.

# %%
# NBVAL_CHECK_OUTPUT
print_checks(ch14.summary_checks(runs)[:2])

# %%
print_checks(ch14.summary_checks(runs)[2:])
