"""Serving the workbench: ``run(config, host, port)`` (what `mokg serve` calls).

Bound to loopback by default; any other host needs a bearer token (``config.token``), checked on
every request by :func:`workbench.app.create_app`. The start-up line says the URL, the store and
whether a token is required.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from graph.errors import InputError
from workbench.app import WorkbenchConfig, create_app

if TYPE_CHECKING:
    from graph.store import GraphStore

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def check_binding(host: str, token: str | None) -> None:
    """Refuse to open the workbench beyond this machine without a token."""
    if host not in LOOPBACK and not token:
        raise InputError(
            f"binding {host} opens the workbench to other machines: pass --token TOKEN "
            "(every request must then carry it), or keep --host 127.0.0.1"
        )
    if token is not None and (not token or not token.isprintable() or " " in token):
        raise InputError("--token must be printable text without spaces")


def start_line(config: WorkbenchConfig, host: str, port: int) -> str:
    """What the server prints when it starts."""
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    guard = (
        f"bearer token required (open {url}?token=... once)" if config.token else "no token (loopback only)"
    )
    return f"mokg workbench at {url} on {config.store.describe()}; {guard}; Ctrl-C stops it"


def run(config: WorkbenchConfig, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the workbench until Ctrl-C. The store is opened first (so a store that cannot be
    opened is a one-line error, not a server that fails to start) and closed at shutdown."""
    import uvicorn

    from graph.store import open_store

    check_binding(host, config.token)
    if not 1 <= port <= 65535:
        raise InputError(f"--port must be between 1 and 65535, got {port}")
    with open_store(config.store) as store:
        app = create_app(config, store)
        sock = listening_socket(host, port)
        # the socket listens before the line is printed: whoever reads the line can connect at once
        # (the kernel queues connections until uvicorn accepts them)
        print(start_line(config, host, sock.getsockname()[1]), flush=True, file=sys.stdout)
        try:
            uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
        finally:
            sock.close()


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening (port 0: a free one).

    ``IPPROTO_TCP`` is spelled out: asyncio sets TCP_NODELAY only on sockets whose proto says TCP
    (with proto 0 every kept-alive response waits ~40 ms for the client's delayed ACK)."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise InputError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port or --host"
        ) from exc
    sock.listen(2048)
    return sock


@contextmanager
def serving(
    config: WorkbenchConfig, store: GraphStore | None = None, start_timeout_s: float = 60.0
) -> Iterator[str]:
    """The app served by uvicorn in a daemon thread on ``127.0.0.1`` and a free port (the socket
    is bound first, so no other process can take the port) while the block runs; yields the base
    URL. The app opens ``config.store`` at start-up unless ``store`` is given (an embedded store
    admits one process: pass the store this process holds to share it)."""
    import uvicorn

    sock = listening_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(config, store), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        if not server.started:
            raise RuntimeError("the workbench did not start (see the log above: the store may not open)")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
