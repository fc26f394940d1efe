"""Many independent solves (one per image) whose function evaluations go to the network as one batch.

Each solve is a generator that yields what it needs evaluated and is sent the result back. ``run_batched`` keeps
solves going, evaluates up to ``width`` of their questions in one call, and answers each; when a solve ends, the next
one starts in its place, so the batch stays full while solves are left. Each solve follows the steps it would
follow alone, while the network sees up to ``width`` of them per call, all in the calling thread.

Which ``width`` of the waiting questions go first matters at the end: a solve that starts late and runs long
leaves the network a short batch for the rest of its run. Given a ``rank`` (how much work each asker has left, as
far as the caller can tell), ``run_batched`` holds more solves than it evaluates per call and answers those with the
most work left first, so that the short ones fill the batches at the end instead of the long ones running alone.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any

import numpy as np

Solve = Generator[Any, Any, Any]
Rank = Callable[[Sequence[Any]], Sequence[float]]  # the waiting items -> the work each one's solve has left
HELD_PER_SLOT = 4  # with a rank: solves held per place in the batch (each holds its solver's state)


def run_batched(
    solves: Iterable[Solve], evaluate: Callable[[Sequence[Any]], Sequence[Any]], width: int, rank: Rank | None = None
) -> list[int]:
    """Runs every solve to its end; ``evaluate`` takes up to ``width`` items the waiting solves yielded and returns
    one result per item, in order. Without ``rank``, ``width`` solves run at a time, first started first; with it,
    up to ``HELD_PER_SLOT * width`` are held and the items whose solves have the most work left go first. Returns
    the items per ``evaluate`` call, in order: what the network saw. A failure of a solve or of ``evaluate`` is
    raised at once, and the solves still waiting are closed."""
    queue = iter(solves)
    held = width if rank is None else HELD_PER_SLOT * width
    waiting: list[tuple[Solve, Any]] = []  # each started solve with the item it waits on, first started first
    sizes: list[int] = []
    try:
        _fill(waiting, queue, held)
        while waiting:
            chosen = _chosen([item for _, item in waiting], width, rank)
            results = evaluate([waiting[i][1] for i in chosen])
            sizes.append(len(chosen))
            waiting[:] = _answered(waiting, dict(zip(chosen, results, strict=True)))
            _fill(waiting, queue, held)
    finally:
        for solve, _ in waiting:
            solve.close()
    return sizes


def _chosen(items: Sequence[Any], width: int, rank: Rank | None) -> list[int]:
    """The indices of the items evaluated next, in the order held: all when they fit, else the ``width`` ranked
    highest (ties: first started first)."""
    if len(items) <= width or rank is None:
        return list(range(min(width, len(items))))
    order = np.argsort(-np.asarray(rank(items), dtype=float), kind="stable")
    return sorted(order[:width].tolist())


def _answered(waiting: list[tuple[Solve, Any]], results: dict[int, Any]) -> list[tuple[Solve, Any]]:
    """Sends each answered solve its result; those that ask again wait with their new item, the ended ones leave,
    the others keep waiting on theirs."""
    kept = []
    for i, (solve, item) in enumerate(waiting):
        if i not in results:
            kept.append((solve, item))
        elif asked := _send(solve, results[i]):
            kept.append((solve, asked[0]))
    return kept


def _send(solve: Solve, value: Any) -> Any:
    """The solve's next item after being sent ``value`` (None starts it); falsy once it has ended."""
    try:
        return (solve.send(value),)
    except StopIteration:
        return ()


def _fill(waiting: list[tuple[Solve, Any]], queue, held: int) -> None:
    """Starts queued solves until ``held`` wait (a solve that ends before asking anything takes no place)."""
    while len(waiting) < held and (solve := next(queue, None)) is not None:
        if asked := _send(solve, None):
            waiting.append((solve, asked[0]))
