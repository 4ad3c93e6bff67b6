"""The small seeded world several test modules share (generated and ingested once per session)."""

from __future__ import annotations

from loaders.world.config import world_config

SMALL_WORLD = world_config("demo", seed=7, n_users=300, n_items=400, n_campaigns=4, chunk_users=120)
