"""Progress of long stages: a rich bar on a terminal, one plain line per stage anywhere else.

On a terminal each stage is a live bar. When the stream is not a terminal (CI, cron, ``| tee``) a
stage writes nothing while it runs and one line when it ends, e.g. ``ingest: 1,234,567 rows in
8.1 s``. Every layer may use it (it sits beside the store, at the bottom); rich is imported only
when a board opens.

>>> with Progress() as board:
...     rows = board.stage("ingest", total=1_000, unit="rows")
...     for _ in range(1_000):
...         rows.advance()
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from rich.console import Console

T = TypeVar("T")
StageProgress = Callable[[str, int], Callable[[], None]]
"""Opens a stage of ``total`` items by name and returns the function that ticks one item off."""


class Stage:
    """One stage of a :class:`Progress` board: counts items, and says once when it is over."""

    def __init__(self, board: Progress, name: str, total: int | None, unit: str) -> None:
        self.board, self.name, self.total, self.unit = board, name, total, unit
        self.completed, self.closed = 0, False
        self.started = time.perf_counter()
        self._task = board._bar.add_task(name, total=total) if board._bar is not None else None

    def advance(self, n: int = 1) -> None:
        """``n`` more items done."""
        self.update(self.completed + n)

    def update(self, completed: int, total: int | None = None) -> None:
        """``completed`` items done (of ``total``, when it is known only now)."""
        self.completed = completed
        if total is not None:
            self.total = total
        if self._task is not None and self.board._bar is not None:
            self.board._bar.update(self._task, completed=completed, total=self.total)
        elif self.total and self.completed >= self.total:
            self.close()

    def close(self) -> None:
        """End the stage; off a terminal this writes its one line (a second call writes nothing)."""
        if self.closed:
            return
        self.closed = True
        if self._task is None:
            self.board._line(self.summary())

    def summary(self) -> str:
        """``name: 1,234 rows in 8.1 s`` (``… 500 of 1,000 rows …`` for a stage left unfinished)."""
        seconds = time.perf_counter() - self.started
        if self.total is None and self.completed == 0:
            return f"{self.name}: done in {seconds:.1f} s"
        count = f"{self.completed:,}"
        if self.total is not None and self.completed < self.total:
            count += f" of {self.total:,}"
        return f"{self.name}: {count} {self.unit} in {seconds:.1f} s"


class Progress:
    """A board of stages. ``console`` (default: stdout, or stderr with ``stderr=True``) decides:
    a terminal gets rich bars (``transient`` ones vanish at the end), anything else plain lines."""

    def __init__(
        self, console: Console | None = None, *, stderr: bool = False, transient: bool = False
    ) -> None:
        from rich.console import Console

        self.console = console if console is not None else Console(stderr=stderr)
        self.transient = transient
        self.stages_open: list[Stage] = []
        self._bar: Any = None

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            from rich.progress import Progress as Bar

            self._bar = Bar(console=self.console, transient=self.transient)
            self._bar.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for stage in self.stages_open:
            stage.close()
        self.stages_open.clear()
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def stage(self, name: str, total: int | None = None, unit: str = "items") -> Stage:
        """Open a stage of ``total`` items (None: not known yet); it ends with the board at the latest."""
        stage = Stage(self, name, total, unit)
        self.stages_open.append(stage)
        return stage

    def stages(self, prefix: str = "") -> StageProgress:
        """A :data:`StageProgress` (the mining job's callback): one stage per name, one tick per item."""

        def open_stage(name: str, total: int) -> Callable[[], None]:
            return self.stage(f"{prefix}{name}", total).advance

        return open_stage

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


def track(
    items: Iterable[T],
    name: str,
    *,
    total: int | None = None,
    unit: str = "items",
    console: Console | None = None,
    stderr: bool = True,
) -> Iterator[T]:
    """Iterate ``items`` as one stage (what ``tqdm(items, desc=name)`` did, minus the per-tick lines)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(console, stderr=stderr) as board:
        stage = board.stage(name, total, unit)
        for item in items:
            yield item
            stage.advance()
