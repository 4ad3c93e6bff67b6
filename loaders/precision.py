"""Serving precision of a model on CPU: ``fp32`` (as trained) or ``bf16``.

bfloat16 matrix products run on AMX tiles or AVX-512 BF16 units where the CPU has them (Intel
Sapphire Rapids and later, AMD Zen 4 and later): several times faster than float32 there, and
slower than float32 elsewhere. ``auto`` picks ``bf16`` only where the CPU says it has them
(``/proc/cpuinfo`` flags ``amx_bf16`` or ``avx512_bf16``). Scores computed in bf16 differ from fp32
ones in the third significant digit, so whatever caches them must key on the precision, and each
caller reports how far its bf16 answers move (ranking overlap, metric change) beside the speed.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from graph.errors import InputError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("fp32", "bf16", "auto")
BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@functools.cache
def cpu_has_fast_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bfloat16 natively (AMX or AVX-512 BF16); False where unknown."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []
    )
    return bool(BF16_FLAGS & set(flags))


def resolve(precision: str) -> str:
    """``fp32`` or ``bf16`` for ``precision`` (``auto``: bf16 where :func:`cpu_has_fast_bf16`)."""
    if precision not in PRECISIONS:
        raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return precision


def dtype_of(precision: str) -> torch.dtype:
    """The torch dtype of ``precision`` (``auto`` resolved first). Only this function imports torch,
    so choosing a precision costs nothing where no model is loaded."""
    import torch

    return torch.bfloat16 if resolve(precision) == "bf16" else torch.float32
