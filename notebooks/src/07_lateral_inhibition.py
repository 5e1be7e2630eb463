# %% [markdown]
# # Chapter 7 — Lateral inhibition: the difference-of-Gaussians surround kernel
#
# **Objectives.** By the end of this chapter you can
#
# * write the difference-of-Gaussians ("Mexican hat") kernel and say what its sum means;
# * see what a fixed surround kernel does to the activity maps of a convolutional layer;
# * measure the effect of adding it to a hard-WTA Hebbian network, with everything else fixed.
#
# **What we reproduce.** The thesis adds surround modulation to the hard-WTA SoftHebb network and
# gains about a point: **73.0 %** with it against **72.1 %** without (Nimmo 2024, Table 3, 5 classifier
# epochs); the kernel for the thesis defaults (5, 1.2, 1.4) sums to **2.341** (spec §1.16). In quick mode
# we train a *reduced* network (the first block at a quarter of its width, on 900 subset images), so the
# accuracies are far lower; what we compare is the two runs with each other.

# %% setup
import ipywidgets as widgets
import torch
from IPython.display import display

from hebblib import experiments as ex
from hebblib.chapters import ch07_lateral_inhibition as ch7
from hebblib.notebook import check_exercise, print_summary, setup, todo
from hebblib.plots import plot_kernel
from hebblib.surround import dog_kernel

device = setup(seed=0)  # the reduced runs of quick mode train on the CPU

# %% [markdown]
# ## 1. The surround kernel
#
# In the cortex a neuron's response is suppressed by activity around its receptive field. Hasani et
# al. (2019) built this into a CNN as a *fixed* convolution applied to every feature map on its own
# (depthwise): close neighbours of a position excite it, those further out inhibit it. The kernel is a
# difference of two normalised Gaussians, a narrow excitatory one ($\sigma_e$) and a wider inhibitory
# one ($\sigma_i > \sigma_e$), divided by its centre value (Nimmo §3.3.9):
#
# $$K(x, y) = \frac{1}{K_0}\left(\frac{e^{-(x^2+y^2)/2\sigma_e^2}}{2\pi\sigma_e^2}
#   - \frac{e^{-(x^2+y^2)/2\sigma_i^2}}{2\pi\sigma_i^2}\right),\qquad K(0,0) = 1,$$
#
# over integer offsets $x, y \in \{-c, \dots, c\}$, $c = \lfloor K/2 \rfloor$. Its sum tells what it does
# to a uniform map: $\sum K > 1$ amplifies (and smooths) it, $\sum K \approx 0$ erases it. Both Gaussians
# are normalised, so a window wide enough to hold the inhibitory one sums to about 0; a small window
# cuts off most of the inhibition and the kernel mostly smooths.
#
# ### Exercise 1: the kernel
#
# Complete `my_dog_kernel`. (Hint: `offsets = torch.arange(-c, c + 1, dtype=torch.float64)`, then
# `r2 = offsets[:, None]**2 + offsets[None, :]**2`; return a float32 tensor.)

# %%
def my_dog_kernel(size=5, sigma_e=1.2, sigma_i=1.4):
    """The (size × size) difference-of-Gaussians kernel, divided by its centre value."""
    # c = size // 2; ...
    return todo("build the two Gaussians over the offsets, subtract, divide by the centre value")


# %%
# NBVAL_CHECK_OUTPUT
my_dog_kernel = check_exercise("DoG kernel", my_dog_kernel, ch7.dog_kernel_solution, ch7.kernel_exercise_cases())
print(f"Σ K for (5, 1.2, 1.4) = {float(my_dog_kernel(5, 1.2, 1.4).sum()):.3f}")

# %% [markdown]
# The thesis default and the per-layer settings of the 2025 code's `optimal` preset. Every one of them
# sums to well above 1: the kernels mostly *smooth*, with a weak inhibitory ring; the 3×3 kernel of
# `optimal`'s second layer has no negative tap at all.

# %%
# NBVAL_CHECK_OUTPUT
ch7.print_kernel_table()

# %%
plot_kernel(dog_kernel(5, 1.2, 1.4));  # a pyplot figure: shown once by the inline backend

# %% [markdown]
# ### Interactive demo: what does the surround do to a feature map?
#
# The figure shows the kernel and, for three test images, one channel of a fixed random first layer
# (cosine activity, followed by the networks' Triangle nonlinearity $\max(0, u_o - \bar u)$) without and
# with the surround kernel.
#
# *Questions.*
# 1. Set size 11, σ_e = 1.0, σ_i = 1.2: the sum falls to about 0. What happens to large uniform
#    regions of the map, and to edges?
# 2. Keep $\sigma_i$ just above $\sigma_e$: what does the kernel become, and why does the centre
#    normalisation matter then?
# 3. With size 3, can the kernel inhibit at all for the defaults $\sigma_e = 1.2$, $\sigma_i = 1.4$?

# %%
from hebblib.notebook import live_demo  # controls + a figure that is redrawn whenever a control moves

demo = live_demo(
    ch7.surround_demo,
    sigma_e=widgets.FloatSlider(value=1.2, min=0.2, max=3.0, step=0.1, description="σₑ"),
    sigma_i=widgets.FloatSlider(value=1.4, min=0.3, max=5.0, step=0.1, description="σᵢ"),
    size=widgets.IntSlider(value=5, min=1, max=11, step=2, description="size"),
    channel=widgets.IntSlider(value=0, min=0, max=7, description="channel"),
)
display(demo)

# %% [markdown]
# ## 2. Hard WTA with and without the surround
#
# The baseline is the `hard_basic` preset: the SoftHebb architecture with cosine activity, hard WTA and
# Instar. The only change is `surround=(5, 1.2, 1.4)` on every Hebbian layer, so the competition (and
# the update) sees the surround-modulated maps $K * u$:
#
# $$y = \mathrm{WTA}\big(K * u\big),\qquad \Delta w_{i^*} \propto y_{i^*}\,(x - w_{i^*}).$$
#
# Both runs use the same images, seed, initial weights and linear probe. In quick mode this is a
# **reduced run** (first block, width × 0.25, 900 subset images, 10 probe epochs, about 30 s); without
# `HEBBLIB_QUICK` it is the whole network on all of CIFAR-10 (`run_preset`, hours on a CPU).

# %%
runs = ex.train_presets(ch7.surround_presets())
ex.print_runs(runs)

# %%
ex.filters_side_by_side(runs)

# %% [markdown]
# *Think.* The kernel acts on $u$ before the competition. With $\sum K \approx 2.3$, a unit that responds
# strongly over a whole region is amplified more than one that responds at a single position. Which
# filters should that favour, and do you see it in the grids? A one-point difference in accuracy is
# within the seed-to-seed spread of a run this small (the thesis's own spread over seeds is ±0.3): try
# `seed=1` in `ex.train_presets(..., seed=1)`.
#
# ## Summary
#
# * The DoG kernel is a fixed depthwise convolution with centre 1; its sum says whether it mostly
#   smooths ($\sum K > 1$, every setting the thesis used) or erases uniform regions ($\sum K \approx 0$,
#   a window wide enough for the inhibitory Gaussian).
# * Added to hard WTA it changes which unit wins where; the thesis gains 0.9 points (73.0 vs 72.1 %).
#
# Measured beside published (the quick-mode figure comes from the reduced run):

# %%
# NBVAL_CHECK_OUTPUT
print_summary([r for r in ch7.summary_rows(runs) if r[3] is not None])

# %%
ex.report_runs(ch7.summary_rows(runs), runs, ch7.THESIS, ch7.THESIS_SOURCE, "hard_basic", "hard WTA")

# %% [markdown]
# **On all of CIFAR-10.** The committed full-data runs hold one pair that differs only in the surround:
# `optimal` is `bcm` (hard WTA + BCM + cosine) with a surround kernel on every layer (the per-layer
# settings of the table above); same seed, same data split, same linear probe. The README puts the
# surround 0.7 points ahead; the line below is what our runs measured, with each one's seeds and spread:
# a difference smaller than the spreads is not told apart from zero. A full-data run of `hard_basic` with
# the thesis kernel is `python -m hebblib reproduce --preset hard_basic --change '{"hebbian": {"surround":
# {"size": 5, "sigma_e": 1.2, "sigma_i": 1.4}}}'`.

# %%
ch7.report_full_surround_pair();
