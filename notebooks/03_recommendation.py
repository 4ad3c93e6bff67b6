# %% [markdown]
# # Recommendation: PEACE against baselines, one user's recommendations explained
#
# PEACE (pre-trained on the source domains, fine-tuned on a target domain) against two baselines,
# MostPop and LightGCN, on the leave-last-out split of one domain: what `mokg eval rec` runs, here
# with one seed and a few epochs so it takes seconds (the numbers are not the paper's table; see
# `docs/rec.md` for those). Then `mokg train peace` and `mokg recommend` for one user, with the
# catalogue entities (categories, brands) each recommendation shares with what the user already
# engaged with. Nothing is written to the store; the artefacts go to the scratch folder.

# %%
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from gnn.rec.baselines import BaselineConfig
from gnn.rec.data import RecDataConfig
from gnn.rec.experiment import RecEvalConfig, run_comparison, summarise
from gnn.rec.peace import PeaceConfig
from gnn.rec.serve import load_artefacts, recommend
from gnn.rec.train import train_peace
from graph.store import StoreConfig, open_store

STORE = Path(os.environ.get("MOKG_PATH", "mokg-data/graph"))
WORLD = Path(os.environ.get("MOKG_WORLD", "mokg-data/world-demo"))
SCRATCH = Path(os.environ.get("MOKG_NOTEBOOK_SCRATCH") or tempfile.mkdtemp(prefix="mokg-nb-"))
EPOCHS = int(os.environ.get("MOKG_NOTEBOOK_EPOCHS", "2"))  # PEACE pre-training and fine-tuning epochs
DOMAIN = os.environ.get("MOKG_NOTEBOOK_DOMAIN", "local_services")  # the target domain
torch.set_num_threads(1)  # tiny models: more threads only add contention
plt.rcParams["figure.dpi"] = 80
store = open_store(StoreConfig(path=STORE))

# %% [markdown]
# ## PEACE vs baselines
# Full ranking of the domain's items for every test user (each user's last interaction held out).

# %%
peace = replace(PeaceConfig(), pretrain_epochs=EPOCHS, finetune_epochs=EPOCHS)
config = RecEvalConfig(
    splits=("leave_last_out",),
    seeds=(0,),
    targets=(DOMAIN,),
    models=("PEACE", "MostPop", "LightGCN"),
    peace=peace,
    baseline=replace(BaselineConfig(), epochs=5 * EPOCHS),
)
raw = run_comparison(store, config, {"store": store})
summary = summarise(raw)
summary[["model", "HR@10", "NDCG@10", "MRR", "AUC", "users", "fit_s"]].round(3)

# %%
fig, ax = plt.subplots(figsize=(6, 3))
summary.set_index("model")[["HR@10", "NDCG@10"]].plot.barh(ax=ax)
ax.set_xlabel(f"{DOMAIN}, leave-last-out, seed 0")
ax.set_title(f"PEACE ({EPOCHS}+{EPOCHS} epochs) vs baselines")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## One user's recommendations
# `train_peace` saves the serving artefacts (`mokg train peace --out DIR`); `recommend` ranks the
# unseen items of a domain for one user from them alone (`mokg recommend --user U --domain D`).

# %%
model, data, artefacts = train_peace(store, RecDataConfig(), peace, [DOMAIN], SCRATCH / "03_peace")
served = load_artefacts(artefacts)
in_domain = set(np.flatnonzero(data.item_domain == data.domain_index(DOMAIN)))
history = pd.DataFrame({"user": data.fit_user, "item": data.fit_item})
history = history[history["item"].isin(in_domain)]
USER = data.user_ids[int(history["user"].value_counts().index[0])]  # the most active user of the domain
picks = recommend(served, USER, DOMAIN, k=5)
print(f"the top 5 of {len(in_domain)} {DOMAIN} items for {USER}, the domain's most active user")

# %% [markdown]
# What explains a recommendation: the category path and brand of the item (its entities in PEACE's
# entity graph) that items the user engaged with share.

# %%
names = {}
for label in ("Item", "Category", "Brand"):
    table = store.node_table(label, ["name"])
    names |= {f"{label}:{i}": n for i, n in zip(table["id"], table["name"], strict=True)}
links = pd.DataFrame({"item": data.item_entity[0], "entity": data.item_entity[1]})
entities_of = links.groupby("item")["entity"].apply(set).to_dict()
row_of = {item: i for i, item in enumerate(data.item_ids)}
seen = set(data.fit_item[data.fit_user == data.user_ids.index(USER)])


def explain(item: str) -> tuple[list[str], list[str]]:
    """The entities ``item`` shares with the user's history, and the history items sharing them."""
    history_entities = set().union(*(entities_of.get(h, set()) for h in seen))
    shared = sorted(entities_of.get(row_of[item], set()) & history_entities)
    because = {h for h in seen if entities_of.get(h, set()) & set(shared)}
    entity_names = [names.get(data.entity_ids[e], data.entity_ids[e]) for e in shared]
    return entity_names, sorted(names.get(f"Item:{data.item_ids[h]}", data.item_ids[h]) for h in because)


rows = []
for rank, (item, score) in enumerate(picks, 1):
    shared, because = explain(item)
    rows.append(
        {
            "rank": rank,
            "item": names.get(f"Item:{item}", item),
            "score": round(score, 3),
            "shared entities": ", ".join(shared) or "-",
            "because of": ", ".join(because[:3]) or "-",
        }
    )
pd.DataFrame(rows)

# %%
store.close()
