"""Many independent solves (one per image) whose function evaluations go to the network as one batch.

Each solve is a generator that yields what it needs evaluated and is sent the result back. ``run_batched`` keeps up
to ``width`` of them going, evaluates everything they asked in one call, and answers each; when a solve ends, the
next one starts in its place, so the batch stays full while solves are left. Each solve follows the steps it would
follow alone, while the network sees up to ``width`` of them per call, all in the calling thread.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any

Solve = Generator[Any, Any, Any]


def run_batched(solves: Iterable[Solve], evaluate: Callable[[Sequence[Any]], Sequence[Any]], width: int) -> list[int]:
    """Runs every solve to its end, ``width`` at a time; ``evaluate`` takes the items the running solves yielded and
    returns one result per item, in order. Returns the items per ``evaluate`` call, in order: what the network saw.
    A failure of a solve or of ``evaluate`` is raised at once, and the solves still running are closed."""
    queue = iter(solves)
    running: list[tuple[Solve, Any]] = []  # each running solve with the item it waits on
    sizes: list[int] = []
    try:
        _fill(running, queue, width)
        while running:
            results = evaluate([item for _, item in running])
            sizes.append(len(running))
            running[:] = _answered(running, results)
            _fill(running, queue, width)
    finally:
        for solve, _ in running:
            solve.close()
    return sizes


def _answered(running: list[tuple[Solve, Any]], results: Sequence[Any]) -> list[tuple[Solve, Any]]:
    """Sends each running solve its result; those that ask again, with their new item (the ended ones leave)."""
    pairs = ((solve, _send(solve, result)) for (solve, _), result in zip(running, results, strict=True))
    return [(solve, asked[0]) for solve, asked in pairs if asked]


def _send(solve: Solve, value: Any) -> Any:
    """The solve's next item after being sent ``value`` (None starts it); falsy once it has ended."""
    try:
        return (solve.send(value),)
    except StopIteration:
        return ()


def _fill(running: list[tuple[Solve, Any]], queue, width: int) -> None:
    """Starts queued solves until ``width`` run (a solve that ends before asking anything takes no place)."""
    while len(running) < width and (solve := next(queue, None)) is not None:
        if asked := _send(solve, None):
            running.append((solve, asked[0]))
