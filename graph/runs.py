"""Runs and their writers: who writes a run, whether that writer is gone, what people are told.

A run records the host and pid of the process writing it. A run still ``running`` whose writer is
gone was interrupted (killed, or its machine lost power): what it committed is in the graph, so
``runs list`` shows it as ``interrupted`` and the next writer says so, with the command that
rolls it back. On the embedded store the rule is exact: the process that has the store open
holds its exclusive lock, so every ``running`` run it is not writing itself is interrupted. On a
server the pid is checked when the run's host is this machine; elsewhere it stays ``running``.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence

log = logging.getLogger("mokg.store")
ADHOC_KIND = "cypher"


def writer() -> dict[str, str | int]:
    """This process as a run's writer: host name and pid."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def adhoc_note(text: str) -> str:
    """The note of an ad-hoc write's run: what `runs delete` can and cannot undo, then the text."""
    caveat = (
        "ad-hoc Cypher; `mokg runs delete` removes the nodes and edges it created but cannot undo "
        "what it SET, REMOVEd or DELETEd: "
    )
    return caveat + text  # a run's note (plain text), never a statement


def warn_interrupted(run_ids: Sequence[str]) -> None:
    """One line for the next writer: which runs were interrupted and how to roll them back."""
    if not run_ids:
        return
    listed = ", ".join(run_ids)
    log.warning(
        "%d interrupted run(s) (%s) never finished (what they committed is in the graph): check them "
        "with `mokg runs list` and roll one back with `mokg runs delete RUN`",
        len(run_ids),
        listed,
    )
