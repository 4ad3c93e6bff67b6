"""A LightPAIR checkpoint directory, self-contained so serving needs nothing else (no hub, no store):

- ``lightpair.json``: model and training config, calibrated thresholds, validation metrics, the
  corpus's sha256 and source run, held-out heads, the heads seen in training, code version;
- ``model.pt``: the model's state dict; ``tails.pt``: e(t) for every candidate tail;
- ``encoder/`` and ``tokenizer/``: the encoder's config and tokenizer files;
- ``corpus.json``: the corpus it was trained on (its sha256 is in ``lightpair.json``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from graph import files
from graph.errors import InputError
from mining.lightpair.model import LightPAIR, ModelConfig

META = "lightpair.json"


@dataclass
class CheckpointMeta:
    model: ModelConfig
    train: dict[str, Any]
    thresholds: dict[str, float]
    metrics: dict[str, float]
    corpus_sha256: str
    source: dict[str, Any]
    held_out: list[str]
    heads: list[str]
    tails: dict[str, list[str]]
    code_version: str = ""
    code_sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def code_sha256() -> str:
    """Hash of LightPAIR's own source files (what produced the checkpoint)."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def save(
    out: Path, model: LightPAIR, meta: CheckpointMeta, tails: dict[str, torch.Tensor], corpus_json: str
) -> None:
    """Write the checkpoint into a sibling directory, then swap it in (:func:`graph.files.write_folder`):
    an interrupted save leaves the previous checkpoint at ``out`` (or nothing), never a mix. A
    folder that holds anything but a checkpoint is refused, never replaced."""
    from graph.version import code_version

    meta.code_version, meta.code_sha256 = code_version(), code_sha256()
    files.write_folder(out, lambda part: _write(part, model, meta, tails, corpus_json), claim)


def claim(root: Path) -> str | None:
    """None if ``root`` holds a LightPAIR checkpoint and nothing else (it may be replaced)."""
    if not (root / META).is_file():
        return f"it is not a LightPAIR checkpoint (no {META})"
    foreign = files.foreign_files(root, _ours)
    return f"it holds {foreign[0]!r}, which is not part of a checkpoint" if foreign else None


def _ours(rel: str) -> bool:
    return rel in (META, "model.pt", "tails.pt", "corpus.json") or rel.startswith(("encoder/", "tokenizer/"))


def _write(
    part: Path, model: LightPAIR, meta: CheckpointMeta, tails: dict[str, torch.Tensor], corpus_json: str
) -> None:
    torch.save(dict(model.state_dict()), part / "model.pt")
    torch.save(tails, part / "tails.pt")
    model.encoder.config.save_pretrained(part / "encoder")
    model.tokenizer.save_pretrained(part / "tokenizer")
    (part / "corpus.json").write_text(corpus_json)
    data = asdict(meta)
    data["model"]["relations"] = list(meta.model.relations)
    (part / META).write_text(json.dumps(data, indent=1, sort_keys=True))


def read_meta(path: Path) -> CheckpointMeta:
    file = path / META
    if not file.exists():
        raise InputError(
            f"{path} is not a LightPAIR checkpoint (no {META}); make one with `mokg lightpair distill`"
        )
    data = json.loads(file.read_text())
    data["model"] = ModelConfig(**{**data["model"], "relations": tuple(data["model"]["relations"])})
    return CheckpointMeta(**data)


def load(path: Path) -> tuple[LightPAIR, CheckpointMeta, dict[str, torch.Tensor]]:
    """The model (eval mode), its metadata and its tail matrices, all from ``path``, offline."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    meta = read_meta(path)
    tokenizer = AutoTokenizer.from_pretrained(path / "tokenizer", local_files_only=True)
    encoder = AutoModel.from_config(  # type: ignore[no-untyped-call]
        AutoConfig.from_pretrained(path / "encoder", local_files_only=True)
    )
    model = LightPAIR(encoder, tokenizer, meta.model)
    model.load_state_dict(torch.load(path / "model.pt", weights_only=True))
    model.eval()
    tails = torch.load(path / "tails.pt", weights_only=True)
    return model, meta, tails
