# %% [markdown]
# # Audiences: who to target for a campaign, how good that is, and a guarded export
#
# Several targeting methods rank every user for one campaign (`mokg audience score`): personalised
# PageRank from the campaign's intents over the graph (`ppr`), a GNN trained on the graph's own
# weak labels (`gnn`), and the rule that follows intent → category → item paths (`rule`, which needs
# a knowledge graph in the store: after `mokg build`). The world knows who converted on each
# campaign (`hidden/conversions.parquet`, never seen by the methods), so each ranking can be scored:
# precision, lift and AUC at the campaign's budget, and lift at every audience size. Last, an export
# through the same guards as `mokg audience export` (minimum size, audit log, manifest), into the
# scratch folder. Nothing is written to the store.

# %%
import json
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from gnn.audience.base import AudienceError, load_campaign, make_targeter
from gnn.audience.export import ExportConfig, audited, check_request, export_audience, manifest_path
from gnn.audience.gnn import GNNConfig
from gnn.audience.metrics import audience_metrics
from gnn.audience.ppr import PPRConfig
from gnn.audience.rule import RuleConfig
from graph.store import StoreConfig, open_store
from loaders.world.layout import WorldDir

STORE = Path(os.environ.get("MOKG_PATH", "mokg-data/graph"))
WORLD = Path(os.environ.get("MOKG_WORLD", "mokg-data/world-demo"))
SCRATCH = Path(os.environ.get("MOKG_NOTEBOOK_SCRATCH") or tempfile.mkdtemp(prefix="mokg-nb-"))
EPOCHS = int(os.environ.get("MOKG_NOTEBOOK_EPOCHS", "2")) * 10  # GNN epochs (the CLI's default is 150)
# the configs `mokg audience score --method M` builds (with fewer GNN epochs)
CONFIGS = {"rule": RuleConfig(), "ppr": PPRConfig(), "gnn": GNNConfig(epochs=EPOCHS, seed=0)}
torch.set_num_threads(1)
plt.rcParams["figure.dpi"] = 80
store = open_store(StoreConfig(path=STORE))

# %% [markdown]
# ## One campaign and its hidden converters

# %%
conversions = pd.read_parquet(WorldDir(WORLD).hidden_for_evaluation("conversions.parquet"))
busiest = conversions["campaign"].value_counts()
CAMPAIGN = str(busiest.index[0])
campaign = load_campaign(store, CAMPAIGN)
positives = set(conversions["user"][conversions["campaign"] == CAMPAIGN])
K = int(campaign.budget or len(positives))
print(f"{CAMPAIGN}: intents {', '.join(campaign.intents)}; domain {campaign.domain}; budget K = {K}")
print(f"{len(positives)} of {len(store.node_table('User'))} users converted (hidden from the methods)")

# %% [markdown]
# ## Every method ranks every user

# %%
ranked, rows = {}, []
for method, config in CONFIGS.items():
    try:
        ranked[method] = make_targeter(method).fit(store, config).score(CAMPAIGN)
    except AudienceError as exc:  # e.g. the rule on a store without a knowledge graph
        rows.append({"method": method, "note": str(exc)})
        continue
    scores = ranked[method]
    if not (scores["score"] > 0).any():  # every user tied at 0: the ranking is the id order
        del ranked[method]
        rows.append({"method": method, "note": "reaches no user: the store holds no KG (run `mokg build`)"})
        continue
    m = audience_metrics(scores, positives, K)
    rows.append(
        {
            "method": method,
            "reached (score > 0)": int((scores["score"] > 0).sum()),
            "K": m.k,
            "hits@K": m.hits,
            "precision@K": round(m.precision, 3),
            "lift@K": round(m.lift, 3),
            "AUC": round(m.auc, 3),
        }
    )
pd.DataFrame(rows)

# %% [markdown]
# Lift at every audience size N: the share of converters among the top N over the share in the
# whole population (1 = no better than picking users at random).

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
base = len(positives) / len(next(iter(ranked.values())))
for method, scores in ranked.items():
    hits = np.cumsum(scores["user_id"].isin(positives).to_numpy())
    sizes = np.arange(1, len(hits) + 1)
    ax.plot(sizes, hits / sizes / base, label=method)
ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
ax.axvline(K, color="black", linestyle=":", linewidth=1, label=f"budget K = {K}")
ax.set_xscale("log")
ax.set_xlabel("audience size N (top N users)")
ax.set_ylabel("lift@N")
ax.set_title(f"{CAMPAIGN}: lift against the hidden converters")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## A guarded export
# `mokg audience export` refuses audiences below the deployment's minimum
# (`MOKG_AUDIENCE_MIN_SIZE`, default 100: small audiences can identify people), logs every attempt
# to an append-only audit log before any work, and writes the file and its manifest complete or not
# at all.

# %%
folder = SCRATCH / "04_audience"
shutil.rmtree(folder, ignore_errors=True)  # this notebook's own exports and audit log from an earlier run
out, audit = folder / f"{CAMPAIGN}.parquet", folder / "audit.jsonl"
too_small = ExportConfig(CAMPAIGN, 10, "ppr", out, audit_log=audit)
try:
    with audited(too_small):
        check_request(too_small)
except AudienceError as exc:
    print("refused:", exc)

# %%
salt = "notebook-salt-0123456789"  # ids are written as sha256(salt:id)
export = ExportConfig(CAMPAIGN, 100, "ppr", out, hash_salt=salt, audit_log=audit)
ppr_config = CONFIGS["ppr"]
with audited(export) as attempt:
    check_request(export)
    targeter = make_targeter("ppr").fit(store, ppr_config)
    manifest = export_audience(store, targeter, ppr_config, export, attempt)
print(json.dumps({k: manifest[k] for k in ("count", "positive_scores", "score_distribution")}, indent=1))
pd.read_parquet(out).head()

# %%
print(manifest_path(out).name, "holds", ", ".join(json.loads(manifest_path(out).read_text())))
attempts = pd.DataFrame([json.loads(line) for line in audit.read_text().splitlines()])
attempts[["run_id", "size", "status", "reason"]]

# %%
store.close()
