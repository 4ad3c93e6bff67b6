# %% [markdown]
# # Mining: a PAIR build, its evaluation, an ablation chart
#
# PAIR mines intent → category knowledge (NEEDS, SERVES, CO_OCCURS_WITH, PRECEDES, ...) by asking an
# LLM in rounds: adaptive relation filtering, progressive expansion, entity resolution and
# aggregation. Here the LLM is the world's *teacher*, a simulated LLM served on 127.0.0.1 that
# answers from the world's hidden knowledge graph with noise, so the notebook runs offline and the
# mined facts can be scored against the truth. This is what `mokg build --limit N --rounds R` and
# `mokg eval mining` do.
#
# The build writes to the store, so it works on a copy of the store in the scratch folder
# (`MOKG_NOTEBOOK_SCRATCH`); the store at `MOKG_PATH` is left as it was.

# %%
import json
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from graph.store import StoreConfig, open_store
from mining.llm.assemble import LLMSpec
from mining.pipeline.ablations import run_ablations
from mining.pipeline.build import BuildRequest, run_build
from mining.pipeline.config import MiningConfig
from mining.pipeline.evaluate import TruthKG, accepted_of, prf
from mining.pipeline.seeds import load_seeds

STORE = Path(os.environ.get("MOKG_PATH", "mokg-data/graph"))
WORLD = Path(os.environ.get("MOKG_WORLD", "mokg-data/world-demo"))
SCRATCH = Path(os.environ.get("MOKG_NOTEBOOK_SCRATCH") or tempfile.mkdtemp(prefix="mokg-nb-"))
SEEDS = int(os.environ.get("MOKG_NOTEBOOK_SEEDS", "6"))  # intents to start from
ROUNDS = int(os.environ.get("MOKG_NOTEBOOK_ROUNDS", "2"))
NOISE = "medium"  # the teacher's noise: none, low, medium, high
plt.rcParams["figure.dpi"] = 80


work = SCRATCH / "02_mining"
shutil.rmtree(work, ignore_errors=True)  # each run of the notebook starts from the store as it is
shutil.copytree(STORE, work / "graph")
store = open_store(StoreConfig(path=work / "graph"))
print(f"mining a copy of {STORE} at {work / 'graph'}")

# %% [markdown]
# ## The build
# A seeded sample of the store's intents are the first heads; every round's accepted tails become
# the next round's heads. The response cache and the checkpoint live in the scratch folder, so
# running this cell again resumes or does nothing.

# %%
config = MiningConfig(rounds=ROUNDS)
llm = LLMSpec(choice="teacher", noise=NOISE, world=WORLD, cache=work / "llm-cache")
request = BuildRequest(config, llm, seeds="intents", limit=SEEDS, workdir=work / "build")
result = run_build(store, request)
report = result.report or json.loads(result.build.report.read_text())  # a rerun: the saved report
print(f"run {result.run_id}: {report['triples']} triples in {report['wall_s']} s")
pd.DataFrame(sorted(report["triples_per_relation"].items()), columns=["relation", "triples"])

# %%
llm_usage = report["llm"]
aggregation = report["aggregation"]
print(
    f"{llm_usage['calls']} LLM calls, {llm_usage['cache_hits']} cache hits; "
    f"{aggregation.get('accepted', 0)} of {aggregation.get('candidates', 0)} candidates accepted"
)
store.run("top_relations", {"rel_type": "NEEDS", "limit": 8})

# %% [markdown]
# ## Evaluation against the world's hidden truth
# Precision, recall and F1 per relation. Recall counts the true triples whose head is a seed or a
# true tail of one (the heads a build could reach), as `mokg eval mining` does.

# %%
truth = TruthKG.from_world(WORLD)
mined = accepted_of(result.build)
heads = truth.reachable_heads(set(result.build.load_state().seeds))
prf(mined, truth, heads).round(3)

# %% [markdown]
# ## Ablations
# Each variant switches one part of PAIR off and mines the same seeds without writing
# (`mokg eval mining --ablations`): free relation generation instead of filtering, one expansion
# prompt instead of progressive ones, no aggregation (one greedy sample, every tail kept).

# %%
seeds = load_seeds(store, "intents", SEEDS, config.seed)
variants = ["PAIR", "free relations", "single-shot", "no aggregation"]
cache = work / "llm-cache"
table = run_ablations(store, truth, seeds, config, [NOISE], variants=variants, cache_dir=cache)
table.round(3)

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
table.set_index("variant")[["precision", "recall", "f1"]].plot.bar(ax=ax, rot=0)
ax.set_ylabel("micro average")
ax.set_ylim(0, 1)
ax.set_title(f"PAIR and its ablations: {len(seeds)} seed intents, {ROUNDS} rounds, {NOISE} noise")
ax.legend(loc="upper right", fontsize=8)
plt.tight_layout()
plt.show()

# %%
store.close()
