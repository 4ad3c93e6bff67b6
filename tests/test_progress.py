"""graph.progress: a bar on a terminal, at most one plain line per stage anywhere else (issue 21)."""

from __future__ import annotations

import io

from rich.console import Console

from graph.progress import Progress, track


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=100), out


def test_off_a_terminal_a_thousand_ticks_write_one_line() -> None:
    console, out = _console(terminal=False)
    assert not console.is_terminal
    with Progress(console) as board:
        stage = board.stage("ingest", total=1_000, unit="rows")
        for _ in range(1_000):
            stage.advance()
    lines = out.getvalue().splitlines()
    assert len(lines) <= 2
    assert lines[0].startswith("ingest: 1,000 rows in ") and lines[0].endswith(" s")


def test_off_a_terminal_each_stage_writes_one_line_even_unfinished_or_without_a_total() -> None:
    console, out = _console(terminal=False)
    with Progress(console) as board:
        tick = board.stages("mining ")("expand", 10)
        for _ in range(4):
            tick()
        board.stage("generating").update(3, total=3)
        board.stage("waiting")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("generating: 3 items in ")
    assert lines[1].startswith("mining expand: 4 of 10 items in ")
    assert lines[2].startswith("waiting: done in ")


def test_track_off_a_terminal_yields_everything_and_writes_one_line() -> None:
    console, out = _console(terminal=False)
    assert list(track(range(1_000), "2-hop queries", unit="q", console=console)) == list(range(1_000))
    assert len(out.getvalue().splitlines()) == 1


def test_on_a_terminal_it_renders_a_bar() -> None:
    console, out = _console(terminal=True)
    with Progress(console) as board:
        stage = board.stage("ingest", total=1_000, unit="rows")
        for _ in range(1_000):
            stage.advance()
    text = out.getvalue()
    assert "ingest" in text
    assert "━" in text  # rich's bar
    assert "rows in" not in text  # no plain summary line on a terminal
