"""Workbench API: campaigns, audience previews, overlap of methods, export (:mod:`workbench.audiences`)."""

from __future__ import annotations

import json
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from workbench.app import Context, context
from workbench.audiences import (
    ExportRequest,
    MethodChoice,
    TargeterCache,
    campaigns,
    export,
    overlap,
    preview,
)

router = APIRouter(tags=["audiences"])
Ctx = Annotated[Context, Depends(context)]
_CACHE_LOCK = threading.Lock()


def targeters(request: Request) -> TargeterCache:
    """FastAPI dependency: the app's fitted targeters (one cache for the app's life)."""
    with _CACHE_LOCK:
        cache = getattr(request.app.state, "targeters", None)
        if cache is None:
            cache = request.app.state.targeters = TargeterCache()
    assert isinstance(cache, TargeterCache)
    return cache


Cache = Annotated[TargeterCache, Depends(targeters)]


class Fit(BaseModel):
    """How the GNN-based methods are fitted (as `mokg audience score --seed --features`)."""

    model_config = ConfigDict(extra="forbid")
    seed: int = 0
    features: bool = True
    epochs: int | None = Field(None, description="GNN training epochs (default: the GNN's)")


class Preview(Fit):
    campaign: str = Field(max_length=200)
    method: str = "ppr"
    size: int = 100
    sample: int = 10


class Overlap(Fit):
    campaign: str = Field(max_length=200)
    methods: list[str] = Field(max_length=10)
    size: int = 100


class Export(Fit):
    campaign: str = Field(max_length=200)
    method: str = "ppr"
    size: int
    salt: str | None = Field(None, description="hash ids as sha256(salt:id); 16+ characters")
    min_size: int | None = None
    with_attributes: bool = False
    format: str = "parquet"


def _choice(ctx: Context, body: Fit, method: str) -> MethodChoice:
    """The method as the request picks it, with the advertiser's data the server was started
    with (`mokg serve --conversion-log --campaign-windows`; never paths from the browser)."""
    cfg = ctx.config
    return MethodChoice(method, body.seed, body.features, body.epochs, cfg.conversions, cfg.windows)


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return out


@router.get("/campaigns")
def list_campaigns(ctx: Ctx) -> dict[str, Any]:
    """Every campaign: intents, domain, budget."""
    with ctx.use() as store:
        return {"campaigns": campaigns(store)}


@router.post("/audiences/preview")
def audience_preview(ctx: Ctx, cache: Cache, body: Preview) -> dict[str, Any]:
    """The size curve (score vs rank), a sample of the audience and the paths behind it."""
    choice = _choice(ctx, body, body.method)
    with ctx.use() as store:
        return _plain(preview(store, cache, body.campaign, choice, body.size, body.sample))


@router.post("/audiences/overlap")
def audience_overlap(ctx: Ctx, cache: Cache, body: Overlap) -> dict[str, Any]:
    """The Jaccard index of the methods' top-N users."""
    choices = [_choice(ctx, body, m) for m in body.methods]
    with ctx.use() as store:
        return _plain(overlap(store, cache, body.campaign, choices, body.size))


@router.post("/audiences/export")
def audience_export(ctx: Ctx, cache: Cache, body: Export) -> dict[str, Any]:
    """Export with the CLI's guards (minimum size, salted hashing, audit log); the manifest."""
    choice = _choice(ctx, body, body.method)
    request = ExportRequest(
        body.campaign, body.size, body.min_size, body.salt, body.with_attributes, body.format
    )
    cfg = ctx.config
    with ctx.use() as store:
        return _plain(export(store, cache, request, choice, cfg.exports, cfg.audit_log))
