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
# # 07 · Long-term memory (TiM)
#
# An assistant that remembers what a user said across sessions: "Think-in-Memory: Recalling and
# Post-thinking Enable LLMs with Long-Term Memory" (Liu et al., arXiv 2311.08719), in
# `consumers/memory/`. Each turn: **recall** the user's most relevant thoughts (MiniLM vectors in an
# LSH index), answer with them, then **post-think** the turn into head–relation–tail thoughts stored
# in the graph (`Thought` nodes that `MENTION` the user and the intents, categories and brands they
# name), **forgetting** what they contradict and **merging** thoughts that share head and relation.
#
# This notebook replays a few days of one GVD user's conversation (the MemoryBank data set, shipped
# in `consumers/memory/data/gvd`) through TiM with the offline spaCy post-thinker and no LLM, asks a
# probing question, deletes the user's memory, and sets TiM beside the raw-history baseline. It runs
# on a **copy** of the store: every turn is a run written to the graph.

# %%
import os
import shutil
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from consumers.memory.config import MemoryConfig
from consumers.memory.gvd import load_gvd
from consumers.memory.report import summary
from consumers.memory.run import Context, EvalConfig, run
from consumers.memory.service import forget, make_thinker, open_assistant, read_replay, show
from graph.store import StoreConfig, open_store
from loaders.features import MiniLMEncoder

STORE = Path(os.environ.get("MOKG_PATH", "mokg-data/graph"))
WORLD = Path(os.environ.get("MOKG_WORLD", "mokg-data/world-demo"))
SCRATCH = Path(os.environ.get("MOKG_NOTEBOOK_SCRATCH") or tempfile.mkdtemp(prefix="mokg-nb-"))
EPOCHS = int(os.environ.get("MOKG_NOTEBOOK_EPOCHS", "3"))  # nothing is trained here
SESSIONS = 3  # days of the GVD user's conversation replayed
EVAL_USERS = 2  # GVD users in the evaluation (all 15: 0)
torch.set_num_threads(1)
plt.rcParams["figure.dpi"] = 80
pd.set_option("display.max_colwidth", 80)
started = time.perf_counter()

work = SCRATCH / "07_memory"
shutil.rmtree(work, ignore_errors=True)
shutil.copytree(STORE, work / "store")
print(f"store {STORE} copied to {work / 'store'}")

# %% [markdown]
# ## A recorded conversation
#
# `read_replay("gvd:NAME")` (what `mokg chat --replay gvd:NAME` reads) gives that GVD user's
# messages, one session per day at its date.

# %%
gvd = load_gvd()
user = sorted(d.user for d in gvd.dialogues)[0]
sessions = read_replay(f"gvd:{user}")[:SESSIONS]
for s in sessions:
    print(s.at, "|", " / ".join(m[:60] for m in s.messages[:2]), "…")

# %% [markdown]
# ## Talk
#
# `open_assistant` is what `mokg chat` opens: TiM over the store, linked to the KG. GVD's users are
# not users of the world, so the `User` node is added first (`mokg chat --add-user`). Without an
# LLM the reply is extractive (the top recalled thoughts) and spaCy post-thinks.

# %%
store = open_store(StoreConfig(path=work / "store"))
with store.run_context("memory", note=f"chat user {user}") as run_id:
    store.upsert_nodes("User", [{"id": user, "name": user}], run_id=run_id)
# fill: probe further LSH buckets until k thoughts are found (`mokg chat`'s default)
assistant = open_assistant(store, MemoryConfig(fill=True), client=None, k=5, thinker="spacy")
replies = []
for session in sessions:
    talk = assistant.conversation(user, at=session.at)
    replies += [talk.say(message) for message in session.messages]
reply = replies[-len(sessions[-1].messages)]  # the last day's first turn
print(f"{user}: {reply.question}")
print(f"assistant: {reply.answer}")
print("post-thought:", [t.text for t in reply.changes.inserted])

# %% [markdown]
# `show` (behind `mokg memory show`) lists the user's active thoughts with the turns they came from
# and the run that wrote them.

# %%
thoughts = show(store, user)
print(f"{len(thoughts)} active thoughts")
thoughts[["at", "text", "turns"]].head(8)

# %% [markdown]
# ## Recall
#
# One of GVD's probing questions for this user whose evidence turn was replayed (GVD turn ids are
# `user/day#turn`), and the memory's top 3 thoughts for it, with the turns they came from.

# %%
days = {s.at for s in sessions}
asked = [p for p in gvd.probes if p.user == user]
probe = next(
    (p for p in asked if p.evidence and p.evidence[0].split("/")[-1].split("#")[0] in days), asked[0]
)
print(f"{probe.question}  (answer {probe.answers[0]}, said in turn {probe.evidence[0]})")
for thought, score in assistant.memory.recall(user, probe.question, k=3):
    print(f"  {score:.3f}  {thought.text}  (turns {', '.join(thought.turns)})")

# %% [markdown]
# ## Forget a user
#
# `forget` (behind `mokg memory forget --yes`) deletes every thought of the user, its edges and the
# stored before-images: unlike TiM's own forgetting (which retires a contradicted thought), it
# cannot be undone.

# %%
print(f"forgot {forget(store, user)} thoughts; left: {len(show(store, user, everything=True))}")
store.close()

# %% [markdown]
# ## Against the baselines
#
# `run` (behind `mokg eval memory`) replays every session of the first GVD users into scratch
# stores and asks the probing questions: retrieval accuracy at k (the share of gold evidence turns
# covered by what is recalled) for TiM through its LSH index and through an exact index, TiM without
# forgetting and merging (`tim-plain`, exact index), and `raw-history` (every turn embedded, exact
# top-k), plus the memory's size per session (TiM counts thoughts, several per turn; raw-history
# counts turns).
#
# The full table (all 15 GVD users, TiM's variants, the whole-history window and mem0, and the
# world's generated dialogues) is in [docs/memory.md](../memory.md) with its commands, e.g.
# `mokg eval memory --out results/` (GVD, the default methods).

# %%
methods = ("tim", "tim-exact", "tim-plain", "raw-history")
config = EvalConfig(datasets=("gvd",), methods=methods, gvd_users=EVAL_USERS)
ctx = Context(MiniLMEncoder(), make_thinker(None, "spacy"), work / "eval")
results = run(config, ctx)
columns = ["method", "recall@1", "recall@5", "recall@10", "memory (end)", "probes"]
summary(results)[columns].round(3)

# %%
LABELS = {"tim": "TiM (forget + merge)", "tim-plain": "TiM, no forget/merge", "raw-history": "raw turns"}
fig, ax = plt.subplots(figsize=(6, 3.5))
for r in results:
    if r.method in LABELS:
        ax.plot(range(1, len(r.sizes) + 1), r.sizes, marker="o", ms=3, label=LABELS[r.method])
ax.set(xlabel="session", ylabel="items in memory per user (mean)", title=f"GVD, {EVAL_USERS} users")
ax.legend()
plt.tight_layout()
plt.show()

# %%
print(f"{time.perf_counter() - started:.0f} s")
