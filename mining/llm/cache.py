"""A content-addressed response cache on disk: (model, request) → responses, so reruns cost nothing.

The key is the SHA-256 of the canonical JSON (sorted keys, no spaces) of the model name and every
field of the :class:`~mining.llm.base.Request`. Entries live in ``ab/abcdef….json`` shards and are
written atomically (temporary file + ``os.replace``), so concurrent writers and killed runs never
leave a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mining.llm.base import Completion, Request

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$MOKG_CACHE/llm``, else ``~/.cache/mokg/llm``."""
    root = os.environ.get("MOKG_CACHE")
    return Path(root) / "llm" if root else Path.home() / ".cache" / "mokg" / "llm"


def request_record(model: str, request: Request) -> dict[str, Any]:
    """What the key hashes: the model and every request field, as plain JSON."""
    return {
        "model": model,
        "messages": [dict(m) for m in request.messages],
        "n": request.n,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "response_schema": request.response_schema,
        "extra": request.extra,
    }


def cache_key(model: str, request: Request) -> str:
    """SHA-256 hex digest of the canonical JSON of :func:`request_record`."""
    canonical = json.dumps(
        request_record(model, request), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """Responses on disk under ``directory`` (default :func:`default_cache_dir`), one file per key."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Completion | None:
        """The stored completion, or ``None`` (a missing or unreadable entry is a miss)."""
        try:
            data = json.loads(self.path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable LLM cache entry %s: %s", self.path(key), exc)
            return None
        usage = data.get("usage", {})
        return Completion(
            [str(t) for t in data["responses"]],
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)),
        )

    def put(self, key: str, completion: Completion, request: dict[str, Any] | None = None) -> None:
        """Store ``completion`` under ``key`` atomically (``request`` is kept for people who audit)."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        entry = {
            "key": key,
            "responses": completion.texts,
            "usage": {
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
            },
            "request": request,
        }
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{key[:8]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(entry, fh, ensure_ascii=False)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def keys(self) -> Iterator[str]:
        """Every stored key."""
        if self.directory.is_dir():
            for path in self.directory.glob("??/*.json"):
                yield path.stem

    def __len__(self) -> int:
        return sum(1 for _ in self.keys())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.path(key).is_file()
