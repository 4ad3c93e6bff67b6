"""Workbench API: the review queue of mined facts and the reviewer's decisions (:mod:`workbench.review`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from workbench.app import Context, context
from workbench.review import ReviewFilter, decide, review_queue

router = APIRouter(tags=["review"])
Ctx = Annotated[Context, Depends(context)]


class Decision(BaseModel):
    """A reviewer's decision on one fact (``key`` as the queue gave it)."""

    model_config = ConfigDict(extra="forbid")
    key: str = Field(max_length=2000)
    decision: str = Field(description="accept, reject or skip")
    retire: bool = Field(False, description="with reject: retire the fact in a run `mokg runs delete` undoes")


@router.get("/review")
def queue(
    ctx: Ctx,
    relation: str | None = None,
    min_conf: float = 0.0,
    max_conf: float = 1.0,
    run: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> dict[str, Any]:
    """One page of mined facts, least confident first, with provenance and earlier decisions."""
    flt = ReviewFilter(relation or None, min_conf, max_conf, run or None, offset, limit)
    with ctx.use() as store:
        return review_queue(store, flt, ctx.config.feedback)


@router.post("/review/decision")
def decision(ctx: Ctx, body: Decision) -> dict[str, Any]:
    """Accept or reject (as the feedback `mokg feedback import` reads), or skip; retire a rejected fact."""
    with ctx.use() as store:
        return decide(store, ctx.config.feedback, body.key, body.decision, body.retire)
