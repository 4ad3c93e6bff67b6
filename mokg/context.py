"""The store a `mokg` command works on: the global options (--store, --path, --wait) and a
command's query limits over the ``MOKG_*`` environment.

The `mokg` callback fills :data:`STATE`; every command module opens its store with
:func:`open_store`, as a context manager: ``with open_store() as store: ...`` closes it at the end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graph.store import GraphStore, StoreConfig

STATE: dict[str, Any] = {"store": None, "path": None, "debug": False, "wait": None, "limits": {}}
"""What the global options of this invocation said (None: the environment's value)."""


def store_config() -> StoreConfig:
    """The store configuration: the environment, overridden by the options given."""
    from graph.store import StoreConfig

    overrides = {"backend": STATE["store"], "path": STATE["path"], "wait_s": STATE["wait"], **STATE["limits"]}
    return StoreConfig.from_env(**overrides)


def set_limits(timeout: float | None, max_rows: int | None) -> None:
    """A command's --timeout and --max-rows (None: the environment's or the default)."""
    STATE["limits"] = {"query_timeout_s": timeout, "max_rows": max_rows}


def open_store(create: bool = False) -> GraphStore:
    """Open the configured store (``create=True`` makes a new embedded one where none exists)."""
    from graph.store import open_store as open_configured

    return open_configured(store_config(), create=create)
