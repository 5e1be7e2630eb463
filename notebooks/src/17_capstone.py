# %% [markdown]
# # Chapter 17 — Capstone: design, run and report your own Hebbian network
#
# **Objectives.** By the end of this chapter you can
#
# * compose a network from the library's rules, competitions and blocks through its typed configuration,
#   and read the library's error when a setting is wrong;
# * check that your design is valid and learns, train it, and set it beside the presets on the same data,
#   seed and probe;
# * run a preset on three seeds end to end from the command line and read the report it writes;
# * run the same networks on a second dataset, Fashion-MNIST.
#
# **What we reproduce.** Your design has no published number; the presets it is compared with do: `soft`
# **79.2 %** and `optimal` **76 %** (code README). Quick mode trains everything at ⅛ width on 800 subset
# images, so every number here is far below the published ones by design; full mode trains the real networks
# on all of the data (on the GPU when there is one, as in Colab).

# %% setup
import torch
import ipywidgets as widgets
from IPython.display import display

from hebblib.chapters import ch17_capstone as ch17
from hebblib.notebook import check_exercise, setup, todo

device = setup(seed=0)

# %% [markdown]
# ## 1. The parts
#
# Every Hebbian layer is `HebbianConv2d(..., rule=..., competition=..., ...)`: the competition turns the
# responses $u$ into a post-synaptic signal $y$, the rule turns $y$ and $u$ into the two factors of one
# update (chapters 1–10),
#
# $$\Delta W_o = \sum_{n,p} r_{n,o,p}\, x_{n,p} \;-\; \Big(\sum_{n,p} s_{n,o,p}\Big) W_o .$$
#
# A network is a stack of blocks (an *architecture*: plain, depthwise-separable, residual, ...), and a
# *preset* says everything else: the settings shared by every layer (`hebbian`), one dict per block
# (`layers`, whose keys win over `hebbian`'s), the input normalisation (`data`) and the two phases
# (`unsupervised`, `supervised`). The parts:

# %%
ch17.print_parts()

# %% [markdown]
# A starting point to edit, the `hard_basic` recipe (SoftHebb's three blocks, hard WTA + Instar + cosine):

# %%
ch17.print_preset(ch17.starting_point())

# %% [markdown]
# The library checks a preset as a whole before it builds anything (`hebblib.config.PresetConfig`): a wrong
# key, type, range or name is one error that names where it is and what is allowed.

# %%
typo = ch17.starting_point()
typo["unsupervised"]["epoch"] = 3
print(ch17.config_error(typo))
print(ch17.config_error(ch17.broken_design()))

# %% [markdown]
# ## 2. Your network
#
# ### Exercise 1: compose a network no preset has
#
# Write `my_network()`: return a preset dict. A suggestion (the reference solution): keep `hard_basic`'s
# three blocks and ZCA-whitened input, make **block 1** `optimal`'s (hard WTA + **BCM** + cosine + a
# difference-of-Gaussians surround, `{"size": 5, "sigma_e": 1.2, "sigma_i": 1.3}`, lr 0.1) and **blocks 2
# and 3** `soft`'s (soft WTA with `inverse_temperature` 0.65 and 0.25 + the **SoftHebb** rule, `dot`
# activation, `softhebb` init, lr 0.08 and 0.05). Or your own idea: any rule, competition and architecture of
# the parts list.
#
# The check calls your function and passes four steps: the configuration is valid; the network builds (at ⅛
# width); it learns for one Hebbian pass over 64 subset images without diverging, and every layer's weights
# change; its class scores are finite. It stops at the first step that fails, with the reason.

# %%
def my_network():
    design = ch17.starting_point()
    # design["hebbian"] = {...}                        # settings every layer shares
    # design["layers"] = [{...}, {...}, {...}]         # one dict per block: rule, competition, lr, ...
    return todo("set the layers of your design, then return design")


# %%
# NBVAL_CHECK_OUTPUT
design = check_exercise("your network", ch17.design_check(my_network), ch17.design_check(ch17.design_solution),
                        ch17.design_cases())
my_preset = ch17.checked_preset(design)
ch17.print_layers(my_preset)

# %% [markdown]
# What a wrong design looks like to the check (a typo in block 1's rule):

# %%
ch17.check_design(ch17.broken_design)

# %% [markdown]
# ## 3. Your design beside the presets
#
# The design and the two presets it borrows from, through the same pipeline (`hebblib.training.run_preset`:
# one Hebbian epoch, frozen features, the linear probe), same images, seed and probe, so the runs differ only
# in their settings:

# %%
runs = ch17.compare(my_preset, seed=0)
ch17.comparison_figure(runs)

# %% [markdown]
# *Think.* How large is one standard error on this test set (the error bars)? Which differences would you
# trust, and what would you run to be sure?
#
# ## 4. Three seeds, end to end, from the command line
#
# One seed is one draw. The command line trains a preset on several seeds (the Hebbian phase, the features,
# the classifier), resumes an interrupted run, and writes a `results.json` per seed and a `summary.json`
# with mean ± std. Full mode runs the command below on all of CIFAR-10 (`--device auto` picks the GPU when
# there is one, as in Colab); quick mode the same command on 800 subset images at ⅛ width. On a machine where
# a full run is long, `--precision auto` (bf16 where the chip is fast at it) and `--compile` (the Hebbian step and
# the features fused by `torch.compile`; its first batch compiles) make it faster: each is a run of its own,
# whose numbers differ from the default's as another seed's would (docs/performance.md):

# %%
print("full data:", ch17.command_line(ch17.cli_arguments(ch17.SEEDS_PRESET, quick=False)))
seeds = ch17.run_seeds(ch17.SEEDS_PRESET)

# %%
ch17.seeds_figure(seeds)

# %% [markdown]
# ### Interactive demo: which measure?
#
# The report gives three measures: the final epoch, the epoch of the best validation accuracy (model
# selection without the test set) and the max over epochs (the README's). Pick one and a seed.
# *Questions.* 1. Which measure is never below the others, and why is it optimistic? 2. How far apart are
# the seeds compared with the gaps in section 3?

# %%
from hebblib.notebook import live_demo  # controls + a figure that is redrawn whenever a control moves

demo = live_demo(
    ch17.measure_demo,
    measure=widgets.Dropdown(options=list(ch17.MEASURES), value="final_test_acc", description="measure"),
    seed=widgets.IntSlider(value=0, min=0, max=len(seeds["runs"]) - 1, description="seed"),
    summary=widgets.fixed(seeds),
)
display(demo)

# %% [markdown]
# ## 5. A second dataset
#
# The dataset is one more setting of the recipe, `data.dataset` (`cifar10`, `fashion_mnist`, `mnist`,
# `stl10`); the networks take its image shape (Fashion-MNIST: 1×28×28, grey), and its runs get their own
# folder and results row. Fashion-MNIST is read from Debian's `dataset-fashion-mnist` package or from the data
# root (else torchvision downloads it, else one error naming every folder searched); a small real subset ships
# with the package, and quick mode uses it. `soft` and `optimal` beside their backprop twin, same data, seed
# and probe:

# %%
fashion = ch17.second_dataset_runs(seed=0)
ch17.second_dataset_figure(fashion)

# %%
ch17.print_second_dataset(fashion)

# %% [markdown]
# *Think.* Which network gains most from the simpler images, and is the order of the three the same as on
# CIFAR-10?
#
# ## Summary
#
# * A network is a preset: an architecture, shared and per-layer Hebbian settings, data and two phases, all
#   checked before anything runs.
# * Compare designs on the same data, seed and probe, and report seeds, not one run.

# %%
ch17.summary(runs, seeds)
