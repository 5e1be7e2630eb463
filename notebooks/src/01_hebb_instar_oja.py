# %% [markdown]
# # Chapter 1 — Fire together, wire together: Hebb, Instar, Oja and Sanger
#
# **Objectives.** By the end of this chapter you can
#
# * write the plain Hebbian update and say why its weights explode;
# * add a decay term in two ways (Grossberg's Instar and Oja's rule) and predict where each one settles;
# * see Sanger's rule extract several principal components, one unit per component;
# * run all four with the library's `HebbianLinear` layer, the same layer the later chapters stack
#   into convolutional networks.
#
# **What we reproduce.** These toy experiments have no published figure; their targets come from
# theory, and the summary prints each measured number beside its target:
# plain Hebb grows like $(1+\eta\lambda_1)^t$ and turns to the first principal component (PC1);
# Instar settles on the activity-weighted mean of its inputs; Oja reaches $\|w\| = 1 \pm 0.01$ along
# PC1; Sanger's units match the eigenvectors from `torch.linalg.eigh` with $|\cos| > 0.95$.
# (Nimmo 2024, §2.5, eqs 18, 19, 24.)

# %% setup
import ipywidgets as widgets
import torch
from IPython.display import display

from hebblib.chapters import ch01_hebb_instar_oja as ch1
from hebblib.notebook import check_exercise, setup, todo

device = setup(seed=0)  # the toy runs below are tiny and stay on the CPU whatever the device

# %% [markdown]
# ## 1. Plain Hebb: correlation learning that never stops
#
# One linear unit sees an input $x \in \mathbb{R}^2$ and responds $y = w \cdot x$. Hebb's postulate
# ("cells that fire together wire together") strengthens each weight in proportion to the product of
# the activities on both sides of the synapse (Nimmo eq 18):
#
# $$\Delta w = \eta\, y\, x .$$
#
# Averaged over the data this is $\Delta w = \eta\, C w$ with $C = \mathbb{E}[x x^\top]$: each step
# multiplies the component of $w$ along eigenvector $k$ by $(1 + \eta \lambda_k)$. The largest
# eigenvalue wins, so the *direction* of $w$ turns to PC1 while its *length* grows like
# $(1+\eta\lambda_1)^t$, without bound. The layer's guard stops the run when $|w|$ passes $10^6$
# (a `HebbianDivergenceError`, caught here and drawn as the red line).

# %%
fig, hebb = ch1.hebb_section(lr=0.01, steps=2000)
fig

# %%
# NBVAL_CHECK_OUTPUT
print(f"guard fired at step {hebb['exploded_at']}; |cos(w, PC1)| = {hebb['cos_pc1']:.3f}")
print(f"growth of log‖w‖ per step: {hebb['growth_per_step']:.4f} "
      f"(prediction log(1 + η λ1) = {hebb['predicted_growth_per_step']:.4f})")

# %% [markdown]
# *Think.* The measured growth rate is a little below $\log(1+\eta\lambda_1)$. Which part of the early
# trajectory, before $w$ has turned to PC1, slows it down?
#
# ## 2. Instar: move towards what you respond to
#
# Grossberg's Instar subtracts a decay proportional to the output (Nimmo eq 19):
#
# $$\Delta w = \eta\, y\,(x - w).$$
#
# Setting the average update to zero gives the fixed point $w^* = \mathbb{E}[y\,x] / \mathbb{E}[y]$:
# the mean of the inputs, each weighted by how strongly the unit responds to it. With a graded output
# $y = w\cdot x$ this leans towards the inputs the unit likes most. If the output is fixed at 1 (a unit
# that "wins" every input, as a one-unit hard winner-take-all does) it is exactly the mean of the
# data; Chapter 3 splits the data between several such units and gets k-means.
#
# The cloud here is centred at (2, 1). (On a centred cloud $\mathbb{E}[y] = w\cdot\mathbb{E}[x] = 0$,
# the decay term vanishes on average, and Instar explodes like plain Hebb: try it in the widget below.)

# %%
fig, instar = ch1.instar_section(lr=0.01, steps=1500, batch_size=16)
fig

# %%
# NBVAL_CHECK_OUTPUT
print(f"y = w·x: ‖w − Σyx/Σy‖ = {instar['distance_to_weighted_mean']:.2f}")
print(f"y = 1:   ‖w − mean‖   = {instar['distance_to_mean_binary']:.2f}")

# %% [markdown]
# ## 3. Oja: a decay that normalises
#
# Oja (1982) makes the decay grow with the *square* of the output:
#
# $$\Delta w = \eta\, y\,(x - y\, w), \qquad y = w\cdot x .$$
#
# On average $\Delta w = \eta\,(C w - (w^\top C w)\, w)$. At a fixed point $C w = (w^\top C w)\, w$, so
# $w$ is an eigenvector of $C$, and its eigenvalue $\lambda = w^\top C w = \lambda \|w\|^2$ forces
# $\|w\| = 1$. Only the top eigenvector is stable: Oja's unit computes the first principal component,
# online, with a local rule.
#
# ### Exercise 1: one step of Oja's rule
#
# Complete `oja_step` for one unit and one input vector: compute the output $y = w\cdot x$ and return
# the new weights $w + \eta\, y\,(x - y\,w)$.

# %%
def oja_step(w, x, lr):
    """One step of Oja's rule. w, x: 1-D tensors of the same length; lr: the learning rate η."""
    # y = ...
    # return ...
    return todo("compute y = w·x, then return w + lr·y·(x − y·w)")


# %%
# NBVAL_CHECK_OUTPUT
oja_step = check_exercise("Oja step", oja_step, ch1.oja_step_solution, ch1.oja_exercise_cases())

# %% [markdown]
# Your function and the library's layer (`HebbianLinear(..., rule="oja", competition="none")`) should
# walk the same path when they see the same inputs in the same order:

# %%
# NBVAL_CHECK_OUTPUT
data = ch1.demo_data(correlation=0.8)
w0 = ch1.initial_weights(1, 2)
by_hand = ch1.run_oja_by_hand(oja_step, data, lr=0.01, steps=500, w0=w0)
by_layer = ch1.train_rule(data, "oja", lr=0.01, steps=500, w0=w0).final[0]
print(f"your Oja vs HebbianLinear after 500 steps: max |difference| < 1e-5: "
      f"{bool((by_hand - by_layer).abs().max() < 1e-5)}")

# %%
fig, oja = ch1.oja_section(lr=0.02, steps=2000, batch_size=8)
fig

# %%
# NBVAL_CHECK_OUTPUT
print(f"Oja: ‖w‖ = {oja['norm']:.3f}, |cos(w, PC1)| = {oja['cos_pc1']:.3f}")

# %% [markdown]
# ## 4. Sanger: several components, one unit each
#
# To extract more than one component, unit $o$ subtracts the reconstruction made by itself and all
# the units before it (Sanger's generalised Hebbian algorithm, printed as eq 24 in Nimmo's thesis):
#
# $$\Delta w_o = \eta\, y_o \Big(x - \sum_{j \le o} y_j\, w_j\Big).$$
#
# Unit 1 sees Oja's rule and finds PC1; unit 2 learns on what unit 1 leaves unexplained and finds PC2;
# and so on. The rule is not local: unit $o$ needs the outputs and weights of the units before it.
# Three units on a 3-D cloud, against `torch.linalg.eigh`:

# %%
fig, sanger = ch1.sanger_section(lr=0.05, steps=600, batch_size=32)
fig

# %%
# NBVAL_CHECK_OUTPUT
print("Sanger |cos(w_o, PC_o)|:", ", ".join(f"{c:.3f}" for c in sanger["cosines"]))
print("Sanger ‖w_o‖:          ", ", ".join(f"{n:.2f}" for n in sanger["norms"]))

# %% [markdown]
# ## 5. Interactive demo: four rules on one cloud
#
# The figure redraws as you move a slider: the weight path over the data (○ start, ● end, an arrow
# when $w$ leaves the view), $\|w\|$ on a log scale, and $|\cos|$ to the principal axes. Sanger runs
# two units.
#
# *Questions.*
# 1. Plain Hebb: at correlation 0 the two eigenvalues are equal. Where does $w$ point now, and why?
# 2. Oja: raise the learning rate until the run explodes. Roughly where does that happen, and does it
#    depend on the correlation? (Hint: the step must stay below about $1/(\eta\,\|x\|^2)$.)
# 3. Instar: move the offset from 2 to 0. Why does Instar now behave like plain Hebb?
# 4. Sanger: at correlation ±0.99 the second eigenvalue is tiny. How many steps does unit 2 need?

# %%
from hebblib.notebook import live_demo  # controls + a figure that is redrawn whenever a control moves

demo = live_demo(
    ch1.rule_demo,
    rule=widgets.Dropdown(options=ch1.RULES, value="oja", description="rule"),
    lr=widgets.FloatLogSlider(value=0.01, base=10, min=-4, max=-0.3, step=0.1, description="η"),
    steps=widgets.IntSlider(value=500, min=1, max=2000, step=1, description="steps"),
    correlation=widgets.FloatSlider(value=0.8, min=-0.99, max=0.99, step=0.01, description="correlation"),
    offset=widgets.FloatSlider(value=0.0, min=0.0, max=3.0, step=0.5, description="offset"),
    seed=widgets.fixed(0),
)
display(demo)

# %% [markdown]
# ## Summary
#
# * Plain Hebb learns the direction of largest variance but its length explodes: it needs a brake.
# * Instar's brake ($-y\,w$) pulls $w$ to the (activity-weighted) mean of what the unit responds to;
#   with a binary output that is a plain mean, the seed of k-means (Chapter 3).
# * Oja's brake ($-y^2 w$) holds $\|w\| = 1$ and turns one unit into an online PCA; Sanger's
#   extension finds the next components, at the cost of locality.
#
# The chapter's numbers beside their theoretical targets:

# %%
# NBVAL_CHECK_OUTPUT
ch1.print_checks(ch1.summary_rows(hebb, instar, oja, sanger))
