"""Command groups that live next to their layer, registered onto the `mokg` app by ``register_all``.

This package owns the command groups (``mokg lightpair``, ``mokg train``, ...): ``register_all``
makes every group of :data:`GROUPS` first, then each module of :data:`MODULES` adds its commands
with ``register(groups)``, to ``groups.app`` (top level), ``groups.eval`` (``mokg eval``) or a group
such as ``groups["lightpair"]``. Several modules may fill one group, in any order. Heavy imports
stay inside the command functions, so building the CLI does no work.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass

import typer

from graph.errors import InputError

MODULES: tuple[str, ...] = (
    "world",
    "teacher",
    "audience",
    "mining",
    "rec",
    "foundation",
    "lightpair",
    "privatelora",
    "schema",
    "retrieval",
    "density",
    "allocation",
    "memory",
    "embed",
    "serve",
)
GROUPS: dict[str, str] = {
    "world": "The seeded marketing world: a simulator with a known ground truth (see loaders/WORLD.md).",
    "teacher": "The world's teacher: an OpenAI-compatible LLM endpoint answering from the ground-truth KG.",
    "audience": "Score users for a campaign and export audiences "
    "(methods: rule, ppr, gnn, lookalike, density).",
    "train": "Train models on the store's graph.",
    "lightpair": "LightPAIR: a small model distilled from the teacher's PAIR answers; adapters; alignment; "
    "PrivateLoRA's split serving.",
    "feedback": "User feedback on mined triples.",
    "schema": "The store's schema: the MoKG's own relation types and those declared in the store.",
    "density": "Density of the store's users (training-free diffusion): synthetic users.",
    "allocate": "GreenFlow: per-request computation allocation over the cascade under a budget.",
    "memory": "TiM long-term memory: a user's thoughts (show) and deleting them on request (forget).",
}
"""Every command group a module may fill: name → help."""


@dataclass(frozen=True)
class Groups:
    """Where a command module registers: the main app, ``mokg eval`` and the named groups."""

    app: typer.Typer
    eval: typer.Typer
    named: dict[str, typer.Typer]

    def __getitem__(self, name: str) -> typer.Typer:
        return self.named[name]


def make_groups(app: typer.Typer, eval_app: typer.Typer) -> Groups:
    """Every group of :data:`GROUPS`, added to ``app``."""
    named = {name: typer.Typer(help=text, no_args_is_help=True) for name, text in GROUPS.items()}
    for name, group in named.items():
        app.add_typer(group, name=name)
    return Groups(app, eval_app, named)


def register_all(app: typer.Typer, eval_app: typer.Typer, modules: Iterable[str] = MODULES) -> Groups:
    """Make the groups, then add every command module's commands to them."""
    groups = make_groups(app, eval_app)
    for name in modules:
        importlib.import_module(f"mokg.commands.{name}").register(groups)
    return groups


def seed_list(text: str) -> tuple[int, ...]:
    """``--seeds 0,1,2`` → (0, 1, 2); a one-line error for anything else."""
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise InputError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise InputError(f"--seeds needs at least one integer, got {text!r}")
    return seeds
