"""`mokg teacher serve`: the world's teacher, an OpenAI-compatible LLM endpoint answering from the
ground-truth KG."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mokg.commands import Groups


def register(groups: Groups) -> None:
    """`teacher serve`."""
    groups["teacher"].command("serve")(teacher_serve)


def teacher_serve(
    world: Annotated[Path | None, typer.Option(help="A world dir (its ontology must match) or none.")] = None,
    host: Annotated[str, typer.Option(help="Interface to bind (keep it on loopback).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 = any free one; the URL is printed).")] = 8001,
    noise: Annotated[str, typer.Option(help="Noise level: none, low, medium or high.")] = "medium",
    seed: Annotated[int, typer.Option(help="Noise seed (same seed, same answers).")] = 0,
    latency: Annotated[float, typer.Option(help="Simulated seconds per answer.")] = 0.0,
) -> None:
    """Serve PAIR's teacher until Ctrl-C. Point any OpenAI client at the printed base URL."""
    import time

    from mining.teacher import TeacherServer, noise_level

    server = TeacherServer(world, host=host, port=port, noise=noise_level(noise, seed), latency_s=latency)
    url = server.start()
    typer.echo(f"teacher ready at {url} (noise {noise}, seed {seed}); Ctrl-C stops it", err=False)
    sys.stdout.flush()
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        server.stop()
