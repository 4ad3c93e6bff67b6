"""Saved foundation artefacts: scoring without the training data, and the representations other
modules read.

Layout of an artefact folder (written aside and swapped in whole, :func:`graph.files.write_folder`):

- ``manifest.json``: model config, its hash (``model_hash``), the graph version and data name,
  scenarios, domains, text model;
- ``model.pt``: the weights and the frozen inputs (ids, text features, sparse tokens);
- ``representations.parquet``: one row per item and per query: ``kind`` (item/query), ``id``,
  ``domain``, ``vector`` (list of float32, the fused vector of the Aspect Gating Fusion), plus
  ``model_hash`` and ``graph_version``.

The same vectors are written back to the graph store (:func:`write_representations`) as
``Representation`` nodes (id ``MODEL_HASH:LABEL:NODE_ID``, the vector as base64 float32) in one
run, so a rerun is a no-op and ``mokg runs delete`` takes them out again.
:func:`read_representations` is the one reader, of a store or of an artefact folder.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from gnn.foundation.features import Encoded
from gnn.foundation.model import FoundationConfig, SRFoundation
from graph import files
from graph.errors import InputError
from graph.store import GraphStore
from loaders.features import text_vector, vector_text

MANIFEST = "manifest.json"
OURS = (MANIFEST, "model.pt", "representations.parquet")
REPRESENTATION_COLUMNS = ["kind", "id", "domain", "vector", "model_hash", "graph_version"]
MODEL_NAME = "S&R Multi-Domain Foundation (arXiv 2309.08939)"
LABELS = {"item": "Item", "query": "Query", "user": "User"}


def model_hash(model: SRFoundation) -> str:
    """sha256 (first 12 hex) of the config and the weights."""
    h = hashlib.sha256(json.dumps(model.config.as_dict(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


_claim = files.artefact_claim(MANIFEST, lambda rel: rel in OURS, "foundation artefact")


def _majority_domain(rows: torch.Tensor, n: int, enc: Encoded) -> np.ndarray:
    """[n] the domain each of ``n`` rows (indexed by the samples' ``rows``) is shown in most."""
    counts = np.zeros((n, len(enc.domains)), np.int64)
    np.add.at(counts, (rows.numpy(), enc.domain.numpy()), 1)
    names: np.ndarray = np.array(enc.domains, dtype=object)[counts.argmax(1)]
    return names


def item_domains(enc: Encoded) -> np.ndarray:
    """[Ni] the domain each item is shown in most (its candidates' domain when scoring)."""
    return _majority_domain(enc.item, len(enc.item_ids), enc)


def request_domains(enc: Encoded) -> np.ndarray:
    """[Nr] the domain each request is made in most."""
    return _majority_domain(enc.req, len(enc.request_ids), enc)


@torch.no_grad()
def representations(model: SRFoundation, enc: Encoded, kinds: np.ndarray, graph_version: str) -> pd.DataFrame:
    """Fused item and query vectors (REPRESENTATION_COLUMNS); ``kinds`` [Nr] = user/query."""
    model.eval()
    idom = item_domains(enc)
    d_index = {d: i for i, d in enumerate(enc.domains)}
    items = torch.arange(len(enc.item_ids))
    i_dom = torch.tensor([d_index[d] for d in idom])
    _, ivec = model.fused(torch.zeros_like(items), items, i_dom)
    queries = torch.from_numpy(np.flatnonzero(kinds == "query"))
    rdom = request_domains(enc)[queries.numpy()]
    q_dom = torch.tensor([d_index[d] for d in rdom], dtype=torch.long)
    qvec, _ = model.fused(queries, torch.zeros_like(queries), q_dom)
    mh = model_hash(model)
    frame = pd.DataFrame(
        {
            "kind": ["item"] * len(items) + ["query"] * len(queries),
            "id": np.concatenate([enc.item_ids, enc.request_ids[queries.numpy()]]),
            "domain": np.concatenate([idom, rdom]),
            "vector": list(torch.cat([ivec, qvec]).numpy().astype(np.float32)),
        }
    )
    return frame.assign(model_hash=mh, graph_version=graph_version)


def save_artefacts(
    model: SRFoundation, enc: Encoded, kinds: np.ndarray, out: Path, meta: dict[str, Any]
) -> Path:
    """Write the artefact folder (module doc); ``meta`` must hold ``graph_version``."""
    version = str(meta.get("graph_version", "unknown"))
    reps = representations(model, enc, kinds, version)
    manifest = meta | {
        "model": MODEL_NAME,
        "config": model.config.as_dict(),
        "model_hash": model_hash(model),
        "data": enc.name,
        "scenarios": enc.scenarios,
        "domains": enc.domains,
        "text_model": enc.text_model,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    state = {
        "weights": model.state_dict(),
        "inputs": {
            "request_ids": list(enc.request_ids),
            "item_ids": list(enc.item_ids),
            "kinds": list(kinds),
            "item_domains": list(item_domains(enc)),
            "vocab": enc.vocab,
            "req_text": enc.req_text,
            "item_text": enc.item_text,
            "req_tokens": enc.req_tokens,
            "item_tokens": enc.item_tokens,
        },
    }

    def write(tmp: Path) -> None:
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        torch.save(state, tmp / "model.pt")
        reps.to_parquet(tmp / "representations.parquet", index=False)

    return files.write_folder(out, write, _claim)


@dataclass
class Artefacts:
    manifest: dict[str, Any]
    model: SRFoundation
    enc: Encoded
    kinds: np.ndarray
    item_domains: np.ndarray
    request_index: dict[str, int]

    def domain_index(self, domain: str) -> int:
        if domain not in self.enc.domains:
            raise InputError(f"unknown domain {domain!r}; the model knows {', '.join(self.enc.domains)}")
        return self.enc.domains.index(domain)

    def candidates(self, domain: str) -> np.ndarray:
        """Item rows of ``domain`` (the domain each item is shown in most)."""
        self.domain_index(domain)
        return np.flatnonzero(self.item_domains == domain)

    def scenario(self, request: str, domain: str) -> tuple[int, int, int]:
        """(request row, domain index, scenario index); InputError naming what is unknown."""
        if request not in self.request_index:
            known = list(self.request_index)
            users = [r for r in known if self.kinds[self.request_index[r]] != "query"][:2]
            queries = [r for r in known if self.kinds[self.request_index[r]] == "query"][:2]
            raise InputError(
                f"unknown user or query {request!r}: the model was trained without it (it knows "
                f"{len(known):,}, e.g. {', '.join(users + queries)})"
            )
        k = self.domain_index(domain)
        row = self.request_index[request]
        scen = f"{domain}/{'search' if self.kinds[row] == 'query' else 'rec'}"
        if scen not in self.enc.scenarios:
            raise InputError(f"the model has no scenario {scen}; it has {', '.join(self.enc.scenarios)}")
        return row, k, self.enc.scenarios.index(scen)

    def top_k(self, candidates: np.ndarray, logits: torch.Tensor, k: int) -> list[tuple[str, float]]:
        """``(item id, click probability)`` of the ``k`` best ``candidates``, best first (equal logits:
        the earlier candidate first)."""
        if k < 1:
            raise InputError(f"-k must be >= 1, got {k}")
        best, idx = torch.topk(logits, min(k, len(logits)))
        top, prob = idx.numpy(), torch.sigmoid(best).numpy()
        order = np.lexsort((top, -best.numpy()))
        return [(str(self.enc.item_ids[candidates[top[i]]]), float(prob[i])) for i in order]


def load_artefacts(folder: Path) -> Artefacts:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise InputError(
            f"{folder} holds no foundation artefacts; make them with `mokg train foundation --out DIR`"
        )
    manifest = json.loads(path.read_text())
    state = torch.load(Path(folder) / "model.pt", weights_only=False)
    inp = state["inputs"]
    empty = torch.zeros(0, dtype=torch.long)
    enc = Encoded(
        name=manifest["data"],
        scenarios=manifest["scenarios"],
        domains=manifest["domains"],
        request_ids=np.array(inp["request_ids"], dtype=object),
        item_ids=np.array(inp["item_ids"], dtype=object),
        vocab=inp["vocab"],
        req_text=inp["req_text"],
        item_text=inp["item_text"],
        req_tokens=inp["req_tokens"],
        item_tokens=inp["item_tokens"],
        req=empty,
        item=empty,
        scenario=empty,
        domain=empty,
        label=torch.zeros(0),
        split=np.zeros(0, dtype=object),
        text_model=manifest["text_model"],
    )
    model = SRFoundation(enc, FoundationConfig(**manifest["config"]))
    model.load_state_dict(state["weights"])
    model.eval()
    ids = enc.request_ids
    return Artefacts(
        manifest,
        model,
        enc,
        np.array(inp["kinds"]),
        np.array(inp["item_domains"]),
        {r: i for i, r in enumerate(ids)},
    )


@torch.no_grad()
def full_logits(art: Artefacts, request: str, domain: str, candidates: np.ndarray) -> torch.Tensor:
    """Logits [C] of the full model forward for item rows ``candidates`` [C] shown in ``domain``."""
    row, k, s = art.scenario(request, domain)
    cand = torch.as_tensor(candidates, dtype=torch.long)
    req, dom, sc = (torch.full((len(cand),), v, dtype=torch.long) for v in (row, k, s))
    logits: torch.Tensor = art.model(req, cand, dom, sc)[0]
    return logits


def score(
    art: Artefacts, request: str, domain: str, k: int = 20, candidates: np.ndarray | None = None
) -> list[tuple[str, float]]:
    """Top ``k`` of ``candidates`` (default: the items of ``domain``) for a user or query id, by
    click probability, through the full model (:mod:`.fastscore` gives the same scores faster)."""
    cand = art.candidates(domain) if candidates is None else np.asarray(candidates)
    return art.top_k(cand, full_logits(art, request, domain, cand), k)


def write_representations(store: GraphStore, reps: pd.DataFrame) -> tuple[str, int]:
    """Upsert ``reps`` (REPRESENTATION_COLUMNS) as ``Representation`` nodes in one run; returns
    (run id, rows written)."""
    rows = [
        {
            "id": f"{mh}:{LABELS[kind]}:{node}",
            "of_label": LABELS[kind],
            "of_id": node,
            "domain": dom,
            "model": MODEL_NAME,
            "model_hash": mh,
            "graph_version": gv,
            "dim": len(vec),
            "vector": vector_text(vec),
        }
        for kind, node, dom, vec, mh, gv in zip(
            reps["kind"].astype(str),
            reps["id"].astype(str),
            reps["domain"].astype(str),
            reps["vector"],
            reps["model_hash"].astype(str),
            reps["graph_version"].astype(str),
            strict=True,
        )
    ]
    with store.run_context("foundation", note="item and query representations") as run_id:
        report = store.upsert_nodes("Representation", rows, run_id=run_id)
    return run_id, (report.created or 0) + (report.updated or 0)


def read_representations(
    source: Path | GraphStore, kind: str | None = None, model_hash: str | None = None
) -> pd.DataFrame:
    """Item/query vectors (REPRESENTATION_COLUMNS; ``vector`` a float32 array) from an artefact
    folder or a store; ``kind`` (item/query) and ``model_hash`` filter."""
    if isinstance(source, (str, Path)):
        path = Path(source) / "representations.parquet"
        if not path.is_file():
            raise InputError(
                f"{source} holds no foundation representations; run `mokg train foundation --out DIR`"
            )
        frame = pd.read_parquet(path)
    else:
        cols = ["of_label", "of_id", "domain", "model_hash", "graph_version", "vector"]
        raw = source.node_table("Representation", cols)
        kinds = {v: k for k, v in LABELS.items()}
        frame = pd.DataFrame(
            {
                "kind": raw["of_label"].map(kinds),
                "id": raw["of_id"],
                "domain": raw["domain"],
                "vector": [text_vector(v) for v in raw["vector"]],
                "model_hash": raw["model_hash"],
                "graph_version": raw["graph_version"],
            },
            columns=REPRESENTATION_COLUMNS,
        )
    if kind is not None:
        frame = frame[frame["kind"] == kind]
    if model_hash is not None:
        frame = frame[frame["model_hash"] == model_hash]
    return frame.reset_index(drop=True)
