"""`mokg lightpair privatelora`: PrivateLoRA's split serving and tuning, measured (arXiv 2311.14030).

Heavy imports (torch, transformers) happen inside the command.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from graph import files
from graph.errors import InputError

if TYPE_CHECKING:
    from mining.privatelora.wire import Network
    from mokg.commands import Groups

OUT = Path("mokg-data/lightpair/privatelora.json")


def register(groups: Groups) -> None:
    """`lightpair privatelora`."""
    groups["lightpair"].command("privatelora")(privatelora)


def privatelora(
    bandwidth_mbps: Annotated[
        list[float] | None, typer.Option(help="Simulated bandwidth, Mbit/s (repeat; paired with --rtt-ms).")
    ] = None,
    rtt_ms: Annotated[
        list[float] | None, typer.Option(help="Simulated round-trip time, ms (repeat).")
    ] = None,
    steps: Annotated[int, typer.Option(help="Tuning steps per method and seed.")] = 150,
    seeds: Annotated[int, typer.Option(help="Number of seeds (0 .. N-1).")] = 3,
    rank: Annotated[int, typer.Option(help="Adapter rank r (both methods).")] = 16,
    lr: Annotated[float, typer.Option(help="Adam learning rate (all methods).")] = 3e-3,
    batch_size: Annotated[int, typer.Option(help="Examples per step.")] = 32,
    wire_bits: Annotated[int, typer.Option(help="Bits per float on the wire: 32 or 16.")] = 32,
    throughput_batches: Annotated[int, typer.Option(help="Test batches timed per link.")] = 3,
    out: Annotated[Path, typer.Option(help="JSON results file.")] = OUT,
) -> None:
    """PrivateLoRA over two real processes on 127.0.0.1: bytes on the wire per token against
    sending hidden states and device-only inference, throughput under simulated links, and tuning
    quality against LoRA and no tuning on the world's triple-judgement task (mean ± std)."""
    from mining.privatelora.experiment import ExperimentConfig, run
    from mining.privatelora.report import rows
    from mokg.output import render_table

    if wire_bits not in (16, 32):
        raise InputError(f"--wire-bits must be 16 or 32, not {wire_bits}")
    if seeds < 1 or steps < 0:
        raise InputError("--seeds must be at least 1 and --steps at least 0")
    cfg = ExperimentConfig(
        rank=rank,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seeds=tuple(range(seeds)),
        networks=_networks(bandwidth_mbps or [100.0, 20.0], rtt_ms or [20.0, 60.0]),
        throughput_batches=throughput_batches,
        wire_bits=wire_bits,
    )
    command = "mokg " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    res = run(cfg, log=lambda line: typer.echo(line, err=True))
    res["command"] = command
    import pandas as pd

    typer.echo(f"command: {command}\nseeds: {list(cfg.seeds)}")
    render_table(pd.DataFrame(rows(res), columns=["what", "system", "value"]), "PrivateLoRA", limit=200)
    files.write_text(out, json.dumps(res, indent=2) + "\n")
    typer.echo(f"results: {out}")


def _networks(bandwidths: list[float], rtts: list[float]) -> tuple[Network, ...]:
    """Pair the repeated options; a single value is used with every value of the other."""
    from mining.privatelora.wire import Network

    if len(bandwidths) == 1:
        bandwidths = bandwidths * len(rtts)
    if len(rtts) == 1:
        rtts = rtts * len(bandwidths)
    if len(bandwidths) != len(rtts):
        raise InputError("give --bandwidth-mbps and --rtt-ms the same number of times (or one of them once)")
    return tuple(Network(b, r) for b, r in zip(bandwidths, rtts, strict=True))
