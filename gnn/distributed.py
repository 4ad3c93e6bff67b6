"""Data-parallel GNN training on CPU: ``torch.distributed`` (gloo) processes started by ``torchrun``.

Li et al., "PyTorch Distributed: Experiences on Accelerating Data Parallel Training", VLDB 2020
(arXiv 2006.15704): every process (rank ``r`` of ``W``) holds the whole model, computes the
gradient of its share of each batch, and DistributedDataParallel (DDP) averages the gradients
across the ranks before the optimiser step, so the replicas never drift apart:

.. math::  g = \\frac{1}{W} \\sum_{r} \\nabla_\\theta L_r

A training loop here keeps its 1-process batch order (every rank draws the same seeded
permutations and negatives) and gives each rank a contiguous slice of each batch
(:func:`part`). For a loss that is a mean over the batch's ``n`` rows, rank ``r`` sums its rows'
losses and multiplies by ``W / n`` (the factor :func:`part` returns); DDP's average is then
exactly the 1-process mean, even when the slices are uneven (the last batch), up to float
rounding. A batch with fewer rows than ranks is not split: every rank takes all of it with the
factor ``1 / n``, and the average is again the batch mean. A term computed identically on every
rank (a batch-independent regulariser) keeps weight 1: the average of equal terms is the term.

Where the replicas are not the 1-process run: a loss term that is a statistic of the whole batch
and not a mean over rows (the foundation model's MMD alignment penalty) is computed on each rank's
slice; dropout masks come from each rank's own generator. The users: PEACE (exact: its softmax
candidates are the whole batch's), the foundation model (exact with ``dropout = 0`` and
``align_weight = 0``), the audience GNN (exact; its forward over the step's graph is repeated on
every rank, only the loss over the weak-label pairs is divided, so it gains no speed).

Only rank 0 reads the store and writes artefacts (:func:`from_main`, :func:`on_main`); the
embedded store admits one process at a time. ``--nproc N`` on a train command re-runs the
command under ``torchrun --standalone`` (:func:`launch`); a worker process finds its rank in
torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``)
and joins the gloo group on first use (:func:`world`). In one process nothing here touches the
training path: :func:`wrap` returns the model itself.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from graph.errors import InputError

if TYPE_CHECKING:
    from torch import nn

T = TypeVar("T")
WORKER_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def is_worker() -> bool:
    """True in a process that ``torchrun`` started for a group of more than one process."""
    return all(k in os.environ for k in WORKER_ENV) and int(os.environ["WORLD_SIZE"]) > 1


def world() -> tuple[int, int]:
    """(rank, world size); a torchrun worker joins the gloo process group on the first call."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if not is_worker():
        return 0, 1
    dist.init_process_group("gloo")
    atexit.register(_leave)
    return dist.get_rank(), dist.get_world_size()


def _leave() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one that reads the store and writes."""
    return world()[0] == 0


def threads(total: int) -> int:
    """torch threads for this process when ``total`` is the command's budget: split among the
    ranks on this machine (gloo ranks that oversubscribe the cores run many times slower)."""
    return max(1, total // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def part(n: int) -> tuple[slice, float]:
    """This rank's contiguous slice of a batch of ``n`` rows and the factor that turns the sum of
    its rows' losses into its share of the batch mean (the module docstring). One process:
    ``(slice(0, n), 1 / n)``; fewer rows than ranks: every rank takes them all, factor ``1 / n``."""
    rank, size = world()
    if n < size or size == 1:
        return slice(0, n), 1.0 / max(n, 1)
    return slice(rank * n // size, (rank + 1) * n // size), size / n


def wrap(model: nn.Module) -> nn.Module:
    """``model`` in DistributedDataParallel when there are several ranks, else ``model`` itself.

    DDP broadcasts rank 0's parameters and buffers when it wraps, so every replica starts equal.
    ``find_unused_parameters``: a parameter no rank used in a step keeps ``grad = None`` (the
    optimiser skips it, as in one process); one that some ranks used gets the average, the others
    counting zero."""
    from torch.nn.parallel import DistributedDataParallel

    if world()[1] == 1:
        return model
    return DistributedDataParallel(model, find_unused_parameters=True)


def loss_module(model: nn.Module, fn: Callable[..., Any]) -> nn.Module:
    """A loss over ``model``'s parameters as a module, ``loss_module(model, fn)(*args) ==
    fn(model, *args)``, for DDP: DDP synchronises the gradients of what ran through its
    ``forward``, and some losses (PEACE's) call several of the model's methods, not ``model(...)``."""
    from torch import nn

    class Loss(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: Any) -> Any:
            return fn(self.model, *args)

    return Loss()


def from_main(fn: Callable[[], T]) -> T:
    """``fn()`` run on rank 0 only, its result sent (pickled) to the other ranks: loading the data
    from the store once."""
    import torch.distributed as dist

    rank, size = world()
    if size == 1:
        return fn()
    box: list[Any] = [fn() if rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[no-any-return]


def on_main(fn: Callable[[], T]) -> T | None:
    """``fn()`` on rank 0 (writing artefacts or the store); the other ranks wait for it and get None."""
    out = fn() if is_main() else None
    barrier()
    return out


def barrier() -> None:
    """Wait for every rank (nothing in one process)."""
    import torch.distributed as dist

    if world()[1] > 1:
        dist.barrier()


def all_sum(value: float) -> float:
    """The sum of ``value`` over the ranks (``value`` in one process)."""
    import torch
    import torch.distributed as dist

    if world()[1] == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item())


def launch(nproc: int, argv: Sequence[str], module: str = "mokg") -> int | None:
    """Run ``python -m module argv`` as ``nproc`` processes under torchrun (``--standalone``: a free
    local port, no elastic restarts) and return the exit status of the first worker that failed
    (0 when all succeeded); None when this process should do the work itself (``nproc`` 1, or it is
    already one of the launched workers). The workers print their own errors; torchrun's report of
    the failure is kept quiet."""
    if nproc < 1:
        raise InputError(f"--nproc must be >= 1, got {nproc}")
    if nproc == 1 or is_worker():
        return None
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = parse_args(  # type: ignore[no-untyped-call]
        ["--standalone", f"--nproc-per-node={nproc}", "-m", module, *_without_nproc(argv)]
    )
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default, without its banner
    agent = logging.getLogger("torch.distributed.elastic")
    level = agent.level
    agent.setLevel(logging.CRITICAL)
    try:
        run(args)  # type: ignore[no-untyped-call]
    except ChildFailedError as failed:
        code = failed.get_first_failure()[1].exitcode
        return code if code > 0 else 128 - code  # killed by signal s: 128 + s, as a shell says
    finally:
        agent.setLevel(level)
    return 0


def _without_nproc(argv: Sequence[str]) -> list[str]:
    """``argv`` less ``--nproc N`` / ``--nproc=N``: torchrun's parser reads ``--nproc`` as an
    ambiguous prefix of its own ``--nproc-per-node`` anywhere in the line, and the workers know
    their number from its environment."""
    out, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--nproc="):
            skip = False
            continue
        skip = arg == "--nproc"
        if not skip:
            out.append(arg)
    return out
