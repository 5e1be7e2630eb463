# %% [markdown]
# # Chapter 0 — Set-up: CIFAR-10, whitening and the evaluation harness
#
# **Objectives.** By the end of this chapter you can
#
# * check which device the course runs on, and switch between quick and full mode;
# * load CIFAR-10 (all of it, or the small real subset shipped with the course) and look at it;
# * explain what ZCA whitening does to images and to their covariance, and compute its matrix yourself;
# * use the evaluation harness of every later chapter: a **linear probe** trained on the frozen
#   features of a network, here on raw pixels and on an *untrained* convolutional layer — the
#   baselines every Hebbian network has to beat.
#
# **Protocol of the course.** Every Hebbian network is trained *without labels* (one pass over the
# training images); then its weights are frozen and only a linear classifier (dropout + one linear
# layer, Adam) is trained on its features. The classifier's epoch is chosen on a validation split
# carved from the training set, and the test set is only reported (the original code had no
# validation split and picked numbers on the test set).
#
# **What we reproduce.** No published number: this chapter measures the floor (raw pixels) and the
# random-feature baseline that the Hebbian chapters are compared against.

# %% setup
import ipywidgets as widgets
import torch
from IPython.display import display

from hebblib.chapters import ch00_setup as ch0
from hebblib.data import DeviceDataset, load_cifar
from hebblib.notebook import check_exercise, report, setup, todo
from hebblib.runtime import is_quick, quick_or

device = setup(seed=0)

# %% [markdown]
# ## 1. The device and the two modes
#
# The line above says where this notebook runs: a CUDA GPU when there is one, else the CPU. Every
# chapter works on both; on a GPU the whole dataset lives in GPU memory and nothing goes back and
# forth per batch.
#
# `HEBBLIB_QUICK=1` (set it in the environment before starting Jupyter; the tests do) switches every
# chapter to **quick mode**: the shipped subset of CIFAR-10 (2,000 training and 500 test images,
# balanced) and short runs, so a chapter finishes in about a minute on a laptop. Without it the
# chapters use all of CIFAR-10 from the data root below (set `HEBBLIB_DATA` to change it).

# %%
from hebblib.data import cifar10_available
found = "found" if cifar10_available() else "not found (quick mode and offline runs use the shipped subset)"
print(f"full CIFAR-10 under the data root: {found}")
print("quick mode" if is_quick() else "full mode")

# %% [markdown]
# ## 2. CIFAR-10
#
# 60,000 colour images of 32×32 pixels in 10 classes, 50,000 for training and 10,000 for testing.
# `load_cifar` returns them as `uint8` tensors in (N, channels, height, width) order.

# %%
train_images, train_labels = load_cifar(train=True)
test_images, test_labels = load_cifar(train=False)
print(f"train: {tuple(train_images.shape)} {train_images.dtype}; test: {tuple(test_images.shape)}")

# %%
ch0.show_examples(train_images, train_labels, per_class=3);

# %%
ch0.class_balance(train_labels, "training images per class");

# %% [markdown]
# The classes are balanced, so chance level is 10 %.
#
# ## 3. ZCA whitening
#
# Neighbouring pixels are strongly correlated: most of an image's variance sits in a few smooth,
# large-scale directions. Competitive Hebbian units then all chase those few directions. ZCA
# whitening removes the correlations while staying as close as possible to the original image
# (Nimmo 2024, §3.1.2, eqs 33–38). With $X$ the $n \times D$ matrix of training images, flattened:
#
# $$\mu = \tfrac1n \textstyle\sum_i X_i,\qquad \Sigma = \tfrac{1}{n-1}(X-\mu)^\top (X-\mu) = U S U^\top,$$
# $$W_{\text{ZCA}} = U\,(S + \varepsilon I)^{-1/2}\,U^\top,\qquad x_{\text{ZCA}} = (x-\mu)\,W_{\text{ZCA}}.$$
#
# The matrix is fitted on the **training images only**, flattened in the same channel-height-width
# order in which it is applied (the original code fitted it on training *and* test images, in
# height-width-channel order, and applied it in channel-height-width order). The spectrum shows what
# it does: the covariance's eigenvalues, spread over seven orders of magnitude, become ≈ 1
# (directions with variance well below ε are damped rather than amplified).

# %%
explorer = ch0.WhiteningExplorer(train_images[: quick_or(10_000, 2_000)])  # Σ = U S Uᵀ, computed once
fig, numbers = ch0.whitening_demo(explorer, eps=1e-3)
print(f"mean |off-diagonal| / mean diagonal of the pixel covariance: {numbers['off_diagonal_before']:.3f} "
      f"before, {numbers['off_diagonal_after']:.3f} after whitening")

# %% [markdown]
# ### Exercise 1: the whitening matrix
#
# Complete `my_zca_matrix(covariance, eps)` so that it returns $U (S+\varepsilon)^{-1/2} U^\top$.
# Hint: `torch.linalg.eigh` returns the eigenvalues $S$ and the eigenvectors $U$ of a symmetric matrix.

# %%
def my_zca_matrix(covariance, eps):
    # eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    # return ...
    return todo()


# NBVAL_CHECK_OUTPUT
cases = [(torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64), 1e-3),
         (torch.eye(3, dtype=torch.float64) * 4, 0.0)]
zca_matrix = check_exercise("ZCA matrix", my_zca_matrix, ch0.zca_matrix, cases)

# %% [markdown]
# ### Interactive: how large should ε be?
#
# *Question:* move ε from $10^{-5}$ to $10^{-1}$. Which value keeps the edges and the colour
# contrasts while removing the flat regions, and which one mostly amplifies noise? (The Hebbian
# chapters use $\varepsilon = 10^{-3}$, as Nimmo 2024.)

# %%
from hebblib.notebook import live_demo  # controls + a figure that is redrawn whenever a control moves

demo = live_demo(explorer.show, eps=widgets.SelectionSlider(options=[1e-5, 1e-4, 1e-3, 1e-2, 1e-1], value=1e-3,
                                                            description="ε"))
display(demo)

# %% [markdown]
# ## 4. The evaluation harness: a linear probe on frozen features
#
# A network's features are only as good as what a *linear* classifier can read from them. The
# harness (`hebblib.classifier.linear_probe`) freezes a model, computes its features for the
# training, validation and test images **once** (cached on the device), and trains
# `Dropout(0.5) → Linear` on them with Adam. Every chapter uses it, so numbers are comparable.
#
# Two baselines: the raw (standardised) pixels, and one convolutional layer with **random**
# weights (96 filters of 5×5, a Triangle non-linearity, max-pooling: the first block of the
# networks to come, untrained). A Hebbian layer is only useful if it beats the second.

# %%
train = DeviceDataset.from_cifar(True, normalization="standardize", device=device)
test = DeviceDataset.from_cifar(False, normalization="standardize", device=device)
train, val = train.split(val_fraction=0.1, seed=0)
print(f"{len(train):,} train / {len(val):,} validation / {len(test):,} test images on {train.device}")

# %%
results = ch0.baseline_probes(train, val, test, epochs=quick_or(20, 5))

# %% [markdown]
# ## Summary
#
# * The course runs on the device printed at the top; `HEBBLIB_QUICK=1` switches to the small subset.
# * ZCA whitening, fitted on the training images only, flattens the covariance spectrum and leaves
#   edges and colour contrasts: the input the hard-competition chapters need.
# * The linear probe on frozen features is the yardstick. Its two baselines, measured here:

# %%
scope = "quick mode: 1,800 training images" if is_quick() else "all training images"
for name, (best, final) in results.items():
    report(f"linear probe on {name}", best, note=f"{scope}; test accuracy at the best validation epoch")
