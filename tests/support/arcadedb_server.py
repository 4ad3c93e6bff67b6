"""Run ArcadeDB with its Neo4j Bolt plugin on 127.0.0.1 until stdin closes (a test fixture).

Usage: python -m tests.support.arcadedb_server ROOT_DIR BOLT_PORT HTTP_PORT PASSWORD DATABASE
Prints ``READY`` on stdout once the database accepts Bolt connections. :func:`bolt_server` starts it
in a subprocess for a ``with`` block (the tests' ``bolt_config`` fixture, ``bench.bolt``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def bolt_server(root: Path, password: str, database: str, timeout_s: float = 180.0) -> Iterator[str]:
    """ArcadeDB with its Bolt plugin on 127.0.0.1, data and log under ``root``, until the block
    ends; yields its ``bolt://`` URI (user ``root``)."""
    bolt, http = free_port(), free_port()
    log = (root / "server.log").open("w")
    args = [str(root / "data"), str(bolt), str(http), password, database]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.arcadedb_server", *args],
        cwd=root,  # ArcadeDB writes ./log there, not into the repository
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        deadline, line = time.monotonic() + timeout_s, ""
        while time.monotonic() < deadline and "READY" not in line:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise RuntimeError(f"the ArcadeDB Bolt server died; see {root / 'server.log'}")
        if "READY" not in line:
            raise RuntimeError(f"the ArcadeDB Bolt server did not start within {timeout_s:g} s")
        yield f"bolt://127.0.0.1:{bolt}"
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def main(argv: list[str]) -> int:
    root, bolt_port, http_port, password, database = argv
    import arcadedb_embedded

    server = arcadedb_embedded.create_server(
        root_path=root,
        root_password=password,
        config={
            "host": "127.0.0.1",
            "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
            "bolt_port": int(bolt_port),
            "http_port": int(http_port),
        },
    )
    server.start()
    server.create_database(database)
    print("READY", flush=True)
    sys.stdin.read()  # block until the parent closes our stdin
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
