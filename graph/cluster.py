"""A Dask cluster for the jobs that shard (the mining build's LLM requests, audience scoring).

The single-process path is the default everywhere and never imports dask; a job shards only when
the user passes ``--cluster``:

- ``local:N`` starts a ``LocalCluster`` of N worker processes, one thread each, on this machine,
  for the duration of the block;
- ``tcp://HOST:PORT`` connects to a running scheduler (``dask scheduler`` / ``dask worker``), whose
  workers must see the same files as this machine (the LLM response cache, the embedding cache).

Dask distributed is the optional ``scale`` extra (``pip install 'mokg[scale]'``).

>>> with open_cluster("local:2") as client:
...     client.submit(sum, [1, 2]).result()
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from graph.errors import InputError

if TYPE_CHECKING:
    from distributed import Client

_LOCAL = re.compile(r"local:(\d+)")


@dataclass(frozen=True)
class ClusterSpec:
    """Where shards run: ``workers`` local processes, or the scheduler at ``address``."""

    workers: int = 0
    address: str = ""

    @classmethod
    def parse(cls, text: str) -> ClusterSpec:
        """``local:N`` or ``tcp://HOST:PORT``; anything else is an :class:`InputError`."""
        local = _LOCAL.fullmatch(text.strip())
        if local:
            workers = int(local.group(1))
            if not 1 <= workers <= 256:
                raise InputError(f"--cluster local:N needs 1 ≤ N ≤ 256 worker processes, not {workers}")
            return cls(workers=workers)
        if text.startswith("tcp://") and len(text) > len("tcp://"):
            return cls(address=text)
        raise InputError(f"--cluster must be local:N (worker processes) or tcp://HOST:PORT, not {text!r}")

    def describe(self) -> str:
        return f"local:{self.workers}" if self.workers else self.address


def _distributed() -> object:
    try:
        import distributed
    except ImportError as exc:
        raise InputError(
            "--cluster needs Dask distributed: install mokg[scale] (pip install 'mokg[scale]')"
        ) from exc
    return distributed


@contextlib.contextmanager
def open_cluster(spec: str | ClusterSpec | Client) -> Iterator[Client]:
    """A Dask client on ``spec`` for the block; a local cluster is shut down after it (a client
    passed in is the caller's: yielded as it is, left open)."""
    if not isinstance(spec, str | ClusterSpec):
        yield spec
        return
    cluster = spec if isinstance(spec, ClusterSpec) else ClusterSpec.parse(spec)
    _distributed()
    from distributed import Client, LocalCluster

    if cluster.address:
        try:
            client = Client(cluster.address, timeout="20s")  # type: ignore[no-untyped-call]
        except OSError as exc:
            raise InputError(
                f"no Dask scheduler answers at {cluster.address}; start one or check --cluster"
            ) from exc
        with client:
            yield client
        return
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=cluster.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as local,
        Client(local) as client,  # type: ignore[no-untyped-call]
    ):
        yield client


def worker_count(client: Client) -> int:
    """The workers the scheduler knows now (at least 1, so a shard count is never 0)."""
    return max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
