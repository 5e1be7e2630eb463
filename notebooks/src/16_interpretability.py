# %% [markdown]
# # Chapter 16 — What did the Hebbian network learn?
#
# **Objectives.** By the end of this chapter you can
#
# * read a trained network layer by layer with one set of tools (`hebblib.interpret`): receptive fields
#   by projected gradient ascent, top-activating patches, the change the next batch would make (LTP /
#   LTD), the competition over training, and a linear probe beside a UMAP of each layer's features;
# * compute which input pixels a unit of a deep layer sees (an exercise);
# * compare what three ways of training the same network leave in it: SoftHebb's soft competition
#   (`soft`), Nimmo's hard WTA + BCM + surround (`optimal`) and backprop (`backprop`).
#
# **What we reproduce.** The thesis's qualitative reading of the learned features (§3.3.13, §5: PGA
# receptive fields, LTP/LTD maps, UMAP of the features), for three networks side by side, and the numbers
# of the three presets: `soft` **79.2 %**, `optimal` **76 %** and `backprop` **77 %** (code README). Quick
# mode trains the three at ⅛ width on the first 800 subset images, a tenth of them kept for validation
# (backprop for 3 epochs), so its accuracies are far below the published ones by design; full mode reads the
# networks trained on all of CIFAR-10 from `runs/`.

# %% setup
import ipywidgets as widgets
import torch
from IPython.display import display

from hebblib.chapters import ch16_interpretability as ch16
from hebblib.notebook import check_exercise, print_checks, setup, todo

device = setup(seed=0)

# %% [markdown]
# ## 1. Three networks of the same shape
#
# All three have SoftHebb's three blocks, `BN → conv → activation → pool`, with 96 → 384 → 1536 channels
# at full width. `soft` and `optimal` learn without labels for one epoch (chapters 5, 7, 8); `backprop`
# has ReLU instead of Triangle and learns every layer from the labels. While each trains, a
# `CompetitionRecorder` counts, after every batch, which unit wins each site: the Hebbian networks pass it
# to `train_hebbian(callback=recorder)`, backprop to `train_end_to_end(hook=recorder)`.
#
# Networks trained on all of CIFAR-10 are too large for git: one command per network makes them, and
# the chapter reads them from `runs/` in full mode:

# %%
ch16.print_full_data_status()

# %%
nets = ch16.trained_networks(seed=0)
ch16.print_networks(nets)
r = ch16.readout(nets)  # what several cells share (responses, features, embeddings), computed once

# %% [markdown]
# First question: did they learn at all? Each unit's weights against its initial weights (the cosine of the
# two; 1 is "never moved"):

# %%
ch16.print_drift(nets)

# %% [markdown]
# In quick mode `soft` has barely moved: its units start with radius ≈ 25 (chapter 5) and the max-normalised
# update moves no weight by more than the learning rate per batch, most by far less, so 23 batches change
# little (on all of CIFAR-10 it gets 703). Keep that in mind below: the quick `soft` shows mostly its random
# start, while `optimal` (hard WTA, unit norm) has learned more. Full mode reads the networks trained on all of
# CIFAR-10.

# %% [markdown]
# ## 2. Receptive fields by projected gradient ascent
#
# For a channel $c$ of layer $\ell$, the input that excites it most, on the sphere $\|x - x_0\| = \varepsilon$
# around a black start $x_0 = 0$, by projected gradient ascent (thesis §3.3.13):
#
# $$x \leftarrow x + \eta\,\frac{\nabla_x a_c(x)}{\|\nabla_x a_c(x)\|},\qquad
# x \leftarrow x_0 + \varepsilon\,\frac{x - x_0}{\|x - x_0\|},\qquad a_c(x) = y^{(\ell)}_c(x)\big|_{\text{centre}} .$$
#
# The whole 32×32 image is optimised for the unit at the centre of the layer's map, normalised the way the
# network's data are (standardised, or ZCA-whitened for `optimal`: a whitening of the whole image), and is
# shown cut to the part that unit sees: 5, 12 and 26 pixels for the three layers (section 3).

# %%
fields = ch16.receptive_fields(nets)
ch16.receptive_fields_figure(fields)

# %% [markdown]
# *Look.* Where are the colour blobs and the oriented edges? The thesis found SoftHebb's first-layer fields
# "distributed" and hard WTA's edge-like; backprop's first layer looks like neither.
#
# ## 3. Where does a unit look?
#
# A unit at position $(i, j)$ of a deep layer sees a square of the image. After a stack of windows (convs
# and pools) with kernel $k$, stride $s$ and padding $p$, its size $r$, the distance $J$ between
# neighbouring units and the centre $c$ of unit 0 follow one window at a time, from $r = J = 1$, $c = 0$:
#
# $$c \leftarrow c + \Big(\tfrac{k-1}{2} - p\Big) J,\qquad r \leftarrow r + (k - 1) J,\qquad J \leftarrow J s .$$
#
# Unit $(i, j)$ is centred on $(c + iJ,\ c + jJ)$ and its box starts $(r - 1)/2$ pixels before.
#
# ### Exercise 1: the unit's box
#
# Complete `unit_box(i, j, layers)`: `layers` is a list of `(kernel, stride, padding)` from the input up
# to the layer; return `torch.tensor([top, left, size])` (integers: `round` the top and left).

# %%
def unit_box(i, j, layers):
    r, jump, start = 1, 1, 0.0
    for kernel, stride, padding in layers:
        pass  # update start, r and jump
    return todo("the box of unit (i, j): top and left from start, i, j, jump and r")


# %%
# NBVAL_CHECK_OUTPUT
unit_box = check_exercise("unit box", unit_box, ch16.unit_box_solution, ch16.unit_box_cases())
print("matches hebblib.interpret.unit_box on every case:",
      all(torch.equal(unit_box(*case), ch16.library_unit_box(*case)) for case in ch16.unit_box_cases()))
print("SoftHebb's three layers, unit (0, 0):", [unit_box(0, 0, w).tolist() for w in ch16.SOFTHEBB_WINDOWS.values()])

# %% [markdown]
# The library computes the same from a trained model's own modules (`hebblib.interpret.unit_geometry`), and
# uses it to cut out, for any unit, the **top-activating patches**: the test images where the unit responds
# most, at the box of the position where it does.
#
# ### Interactive demo: what does one unit respond to?
#
# Choose a network, a layer and a unit: its PGA receptive field (left) and the 8 test patches that drive it
# most (right, pixels as they are). *Questions.* 1. Do a unit's top patches share the colour or the
# orientation of its receptive field? 2. Which layer's patches look most alike for the Hebbian networks,
# and for backprop? 3. Find a unit whose patches are all the same object part.

# %%
from hebblib.notebook import live_demo  # controls + a figure that is redrawn whenever a control moves

demo = live_demo(
    ch16.unit_demo,
    network=widgets.Dropdown(options=list(nets), value="soft", description="network"),
    layer=widgets.Dropdown(options=nets["soft"].blocks, value="conv1", description="layer"),
    unit=widgets.IntSlider(value=0, min=0, max=ch16.smallest_width(nets) - 1, description="unit"),
    r=widgets.fixed(r),
)
display(demo)

# %% [markdown]
# ## 4. Potentiation and depression, layer by layer
#
# The change one batch would make now, per filter $o$: $\sum \Delta W_o$ over its weights, green where it
# is net potentiation (LTP), red where it is net depression (LTD) (thesis §5.4). For backprop the same
# picture of $-\partial L / \partial W$, the direction gradient descent moves the weights.

# %%
deltas = ch16.updates(nets)
ch16.ltp_ltd_figure(deltas)

# %%
ch16.print_ltp_ltd(deltas)

# %% [markdown]
# ## 5. The competition over training
#
# At every site (image, position) the winner is $\arg\max_o u_o$. With $p_o$ the share of sites unit $o$
# wins, the usage entropy
#
# $$H = -\frac{1}{\log C}\sum_o p_o \log p_o \in [0, 1]$$
#
# is 1 when all $C$ units win equally often and 0 when one unit wins everything. Batch by batch, while
# each network trained:

# %%
ch16.entropy_figure(nets)

# %% [markdown]
# And the distribution of the win rates over all of training, as the cumulative share of units (a seaborn
# ECDF; a win rate × units of 1 is the uniform share, the dashed line):

# %%
ch16.win_rate_figure(nets)

# %% [markdown]
# ## 6. Does each layer separate the classes?
#
# The same linear probe (Dropout + Linear, Adam) on each block's frozen features, beside a UMAP of those
# features for test images coloured by class (umap-learn: `n_neighbors` 15, `min_dist` 0.1; a picture, not a
# measurement: the probe is the number).

# %%
probes = ch16.layer_probes(r)
ch16.print_probes(probes)

# %%
ch16.embeddings(r)
ch16.umap_figure(r, probes)

# %%
ch16.probe_figure(probes)

# %% [markdown]
# *Think.* Backprop's layers are trained for the probe's very task; the Hebbian layers never saw a label.
# Which layer of each network separates the classes best, and does UMAP's picture agree with the probe?
#
# ## Summary
#
# * PGA receptive fields, top-activating patches, LTP/LTD and the competition read any trained network the
#   same way (`hebblib.interpret`).
# * A unit's box follows from the windows on the way: $r$, $J$ and $c$ one window at a time.

# %%
# NBVAL_CHECK_OUTPUT
print_checks(ch16.summary_checks(nets, fields, deltas, probes))

# %%
ch16.summary(nets, probes)
