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
# # 08 · Computation allocation (GreenFlow)
#
# Spend the recommender's computation where it pays: "GreenFlow: A Computation Allocation Framework
# for Building Environmentally Sound Recommendation System" (IJCAI 2023, arXiv 2312.16176), in
# `consumers/allocation/`. A cascade (recall → pre-ranking → ranking) can run each request through
# one of many *action chains* (a model instance and an item count per stage), cheap or expensive.
# GreenFlow estimates each chain's reward per request from an exploration log and picks, per
# request, argmax_j (reward_j − λ·cost_j), with the dual variable λ updated online so that the day's
# spend meets a budget.
#
# This notebook trains a tiny cascade of the project's own models (BPR, LightGCN) on the world,
# scores every chain on later recommendation pages by the world's hidden click model, and compares
# GreenFlow with every fixed chain, a random chain, DCAF's static λ and the offline optimum. Nothing
# is written to the store.

# %%
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from consumers.allocation.build import cascade_config, run_cascade
from consumers.allocation.config import AllocationConfig, RewardConfig
from consumers.allocation.persist import load_allocator, pacing_windows, serve_table
from consumers.allocation.run import run
from consumers.allocation.simulate import SimulationRequest, run_simulation
from graph.store import StoreConfig, open_store

STORE = Path(os.environ.get("MOKG_PATH", "mokg-data/graph"))
WORLD = Path(os.environ.get("MOKG_WORLD", "mokg-data/world-demo"))
SCRATCH = Path(os.environ.get("MOKG_NOTEBOOK_SCRATCH") or tempfile.mkdtemp(prefix="mokg-nb-"))
EPOCHS = int(os.environ.get("MOKG_NOTEBOOK_EPOCHS", "3"))
REQUESTS = 600  # recommendation requests scored by every chain (the quick preset: 3,000)
SAVING = 0.4  # the budget saves this share of the most expensive chain's cost (the paper's 40 %)
torch.set_num_threads(1)
plt.rcParams["figure.dpi"] = 80
started = time.perf_counter()
work = SCRATCH / "08_allocation"
print(f"store {STORE}, world {WORLD}; {REQUESTS} requests, {EPOCHS} epochs per cascade model")

# %% [markdown]
# ## The cascade and its chain outcomes
#
# `run_cascade` (behind `mokg allocate cascade`) trains the cascade's model instances on the world's
# past (the store's interactions before a time cut), takes the later recommendation pages as
# requests, runs every chain on every request and saves the `ChainOutcomes`: per request its
# features, per chain its cost (FLOPs, CPU time) and its true reward (the hidden click model's
# expected clicks on what the chain shows). The `tiny` preset has 8 chains: 2 recall models × 2 item
# counts, one pre-ranker, 2 rankers.

# %%
cascade = cascade_config("tiny", "world", max_requests=REQUESTS, dot_epochs=EPOCHS)
with open_store(StoreConfig(path=STORE)) as store:
    built = run_cascade(store, "world", cascade, WORLD, work / "outcomes")
outcomes = built.built.outcomes
print(
    f"{outcomes.n_requests:,} requests, {len(outcomes.chains)} chains, built in {built.built.seconds:.0f} s"
)
print(f"Spearman(FLOPs, CPU) over the chains: {built.spearman:.2f}")
built.table.round(4)

# %% [markdown]
# ## GreenFlow against fixed chains
#
# `run` (behind `mokg eval allocation`) splits the requests into yesterday (the exploration log: one
# random chain per request, only its reward seen) and today, fits the reward estimator on the log,
# and replays today under the budget with every policy. `kept_vs_max` is the reward kept against
# always running the most expensive chain, `saved_vs_max` the computation saved.
#
# At this size (a few hundred requests, a reward model fitted on half of them) the numbers are a
# smoke test. The full tables (synthetic traffic of 100,000 requests, the world's `full` cascade of
# 56 chains, MovieLens-1M; adherence per hour, energy) are in [docs/allocation.md](../allocation.md)
# with their commands, e.g. `mokg eval allocation --traffic world --world W --cascade full --out
# results/`.

# %%
config = AllocationConfig(budget_saving=SAVING, reward=RewardConfig(epochs=50, seed=0), seed=0)
results = run(outcomes, config)
columns = ["policy", "spend_share", "saved_vs_max", "kept_vs_max", "kept_vs_optimum"]
results.at_budget[columns].round(3)

# %% [markdown]
# The revenue–computation frontier: every fixed chain is one point; each policy is a line over
# budgets from small to large savings. A policy above the fixed chains keeps more reward for the
# same computation.

# %%
front = results.frontier
fig, ax = plt.subplots(figsize=(6.5, 4))
fixed = front[front["policy"].str.startswith("fixed ")]
ax.scatter(fixed["saved_vs_max"], fixed["kept_vs_max"], s=16, c="grey", label="fixed chains")
for policy, part in front[~front["policy"].str.startswith("fixed ")].groupby("policy", sort=False):
    if policy != "max chain":
        part = part.sort_values("saved_vs_max")
        ax.plot(part["saved_vs_max"], part["kept_vs_max"], marker="o", ms=3, label=str(policy))
ax.set(
    xlabel="computation saved vs the most expensive chain", ylabel="reward kept vs the most expensive chain"
)
ax.set_title(f"revenue–computation frontier ({outcomes.n_requests} world requests)", fontsize=10)
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Budget adherence: how close each policy's spend stays to the day's budget when the budget per hour
# follows the traffic, yesterday's traffic (a forecast) or is flat.

# %%
results.adherence[["split", "policy", "day_ratio", "kept_vs_optimum"]].round(3)

# %% [markdown]
# ## Serving: one request at a time, λ paced
#
# `run_simulation` (behind `mokg allocate simulate`) replays today through GreenFlow alone and hands
# back the allocator with its pacing plan (yesterday's spend curve, the hourly budgets). Saved and
# loaded (`mokg allocate serve`), it sets λ before every request from the hour's spend so far:
# `choose_at(features, seconds after midnight)`. Below, today's requests are served one at a time
# from the saved file, and each hour's spend is set against its budget. This tiny world brings ~14
# requests an hour, each a tenth of its hour's budget or more, so hours miss by tens of percent and
# the day overshoots a little; at ~200 requests an hour from as many users every hour holds within
# ±2 % (docs/allocation.md), and where one user's burst is a quarter of an hour (MovieLens-1M) it
# does not.

# %%
simulation = run_simulation(outcomes, SimulationRequest(1 - SAVING, config))
served = load_allocator(simulation.allocator.save(work / "allocator.npz"))
rows = simulation.today
frame = pd.DataFrame(rows.features, columns=list(rows.feature_names)).assign(time=rows.times)
chosen = serve_table(served, frame, paced=True)
hours = pacing_windows(served)
day_ratio = hours["spend"].sum() / hours["budget"].sum()
print(f"{len(chosen):,} requests served; spend / budget over the day {day_ratio:.1%}")
fig, ax = plt.subplots(figsize=(6.5, 3))
ax.bar(hours["window"], hours["budget"], color="lightgrey", label="budget")
ax.plot(hours["window"], hours["spend"], marker="o", ms=3, label="spend (served, paced)")
ax.set(xlabel="hour of the day (UTC)", ylabel=f"{config.cost_unit} per hour")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %%
print(f"{time.perf_counter() - started:.0f} s")
