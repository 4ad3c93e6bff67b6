# %% [markdown]
# # Quick start: the store, named queries, a neighbourhood
#
# Open the embedded store the demo built (`mokg demo`), read its graph version, ask the named
# queries of `queries/library` (what `mokg query NAME -p KEY=VALUE` runs) and draw one user's
# neighbourhood. Nothing here writes to the store.
#
# Where the data is comes from the environment: `MOKG_PATH` (the embedded store, default
# `mokg-data/graph`) and `MOKG_WORLD` (the world it was ingested from, default
# `mokg-data/world-demo`).

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import networkx as nx
import pandas as pd

from graph.export.networkx_view import node_key, to_networkx
from graph.store import StoreConfig, open_store
from queries.library import load_library

STORE = Path(os.environ.get("MOKG_PATH", "mokg-data/graph"))
WORLD = Path(os.environ.get("MOKG_WORLD", "mokg-data/world-demo"))
SCRATCH = Path(os.environ.get("MOKG_NOTEBOOK_SCRATCH") or tempfile.mkdtemp(prefix="mokg-nb-"))
plt.rcParams["figure.dpi"] = 80
pd.set_option("display.max_rows", 20)

# %% [markdown]
# ## The store and its graph version
# Every read sees one graph version: the backend, the schema version and the last run that wrote.

# %%
store = open_store(StoreConfig(path=STORE))
info = store.stats()
print(info["store"], "- version", store.version())
pd.DataFrame(sorted(info["nodes"].items()), columns=["label", "nodes"])

# %%
pd.DataFrame(sorted(info["edges"].items()), columns=["relation", "edges"])

# %% [markdown]
# ## Named queries
# The library holds parameterised Cypher with typed parameters (`mokg query --list`).

# %%
library = load_library()
pd.DataFrame([{"query": n, "parameters": library.queries[n].signature()} for n in library.names()]).head(12)

# %%
store.run("top_degree", {"label": "Item", "limit": 5})

# %%
campaigns = store.run(
    "MATCH (c:Campaign)-[:TARGETS]->(i:Intent) "
    "RETURN c.id AS campaign, i.id AS intent ORDER BY campaign, intent"
)
CAMPAIGN = str(campaigns["campaign"].iloc[0])
store.run("k_hop_neighbourhood", {"label": "Campaign", "id": CAMPAIGN, "hops": 1})

# %%
store.run("top_degree", {"label": "User", "limit": 3})

# %% [markdown]
# ## A user's neighbourhood
# `store.subgraph` reads the nodes and edges around a seed (the same call as
# `mokg export --seed User:ID --hops 2`); `to_networkx` turns it into a networkx graph. We pick a
# user with a handful of purchases and views so the picture stays readable, and leave out the other
# users two hops away.

# %%
picked = store.run(
    "MATCH (u:User)-[:INTERACTED]->(i:Item) WITH u, count(i) AS n WHERE n >= 4 AND n <= 8 "
    "RETURN u.id AS user, n ORDER BY n DESC, user LIMIT 1"
)
USER = str(picked["user"].iloc[0])
store.run("path_between", {"from_label": "Campaign", "from_id": CAMPAIGN, "to_label": "User", "to_id": USER})

# %%
RELATIONS = ["INTERACTED", "SEARCHED", "CLICKED", "BELONGS_TO", "MADE_BY"]
sub = store.subgraph(rel_types=RELATIONS, seeds={"User": [USER]}, hops=2)
full = to_networkx(sub).to_undirected()
centre = node_key("User", USER)
full.remove_nodes_from([n for n, d in full.nodes(data=True) if d["label"] == "User" and n != centre])
g = nx.ego_graph(full, centre, radius=2)
colours = {"User": "tab:red", "Item": "tab:blue", "Category": "tab:green", "Brand": "tab:orange"}
fig, ax = plt.subplots(figsize=(8, 6))
pos = nx.spring_layout(g, seed=0)
nx.draw_networkx_edges(g, pos, ax=ax, alpha=0.4)
for label, colour in {**colours, "Query": "tab:purple"}.items():
    nodes = [n for n, d in g.nodes(data=True) if d["label"] == label]
    nx.draw_networkx_nodes(g, pos, nodelist=nodes, node_color=colour, node_size=140, label=label, ax=ax)
names = {n: str(d.get("name") or d["id"])[:22] for n, d in g.nodes(data=True) if d["label"] in colours}
nx.draw_networkx_labels(g, pos, labels=names, font_size=7, ax=ax)
ax.set_title(f"{USER}: two hops over {', '.join(RELATIONS)}")
ax.legend(fontsize=8)
ax.axis("off")
plt.show()
print(f"{g.number_of_nodes()} nodes, {g.number_of_edges()} edges at graph version {sub.version}")

# %%
store.close()
