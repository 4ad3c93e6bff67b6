"""The installed mokg's version, read from the package metadata (the ground floor: every layer may
import it, so no lower layer needs the CLI package for a provenance stamp)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def code_version() -> str:
    """The version of the installed ``mokg`` distribution (``0+unknown`` when it is not installed)."""
    try:
        return version("mokg")
    except PackageNotFoundError:
        return "0+unknown"
