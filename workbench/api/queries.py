"""Workbench API: queries (skeleton; the owner fills it in)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["queries"])
