"""Many independent solver runs (one per image) whose function evaluations go to the network as one batch.

SciPy's L-BFGS-B drives its own loop and calls back for f(x) and its gradient, one problem at a time. Run
each image's problem in its own thread: its callback posts the point and waits, and the calling thread
evaluates every posted point in one batch as soon as every running solver waits (or has finished). Each
image follows the iterates it would follow alone, while the network sees up to ``width`` images per call;
when a solver finishes its image, the next image starts in its place, so the batch stays full while
images are left.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any


class _Request:
    def __init__(self, item: Any) -> None:
        self.item = item
        self.answered = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class _Aborted(Exception):
    """Raised in a solver thread after another one failed: the run is stopping."""


class BatchedEvaluations:
    """Runs jobs in up to ``width`` threads; each job's ``ask(item)`` is answered by ``evaluate`` on a batch.

    :param evaluate: takes the items posted by the waiting jobs, returns one result per item, in order.
        Runs in the thread that called ``run`` (where the network runs, as it would without threads).
    """

    def __init__(self, evaluate: Callable[[Sequence[Any]], Sequence[Any]]) -> None:
        self._evaluate = evaluate
        self._lock = threading.Lock()
        self._all_waiting = threading.Condition(self._lock)  # only the evaluating thread waits on it
        self._pending: list[_Request] = []
        self._running = 0
        self._failure: BaseException | None = None
        self.batch_sizes: list[int] = []  # images per evaluation, in order: what the network saw

    def ask(self, item: Any) -> Any:
        """From a job: the result of ``evaluate`` on ``item``, once the whole batch it joined is evaluated."""
        request = _Request(item)
        with self._lock:
            if self._failure is not None:
                raise _Aborted
            self._pending.append(request)
            if len(self._pending) >= self._running:
                self._all_waiting.notify()
        request.answered.wait()
        if request.error is not None:
            raise _Aborted from request.error
        return request.result

    def run(self, jobs: Iterable[Callable[[], None]], width: int) -> None:
        """Runs every job (each may call ``ask`` any number of times), ``width`` at a time; re-raises the first
        failure of a job or of ``evaluate`` once every thread has stopped."""
        queue = iter(jobs)
        threads = [threading.Thread(target=self._work, args=(queue,), daemon=True) for _ in range(width)]
        self._running = len(threads)
        for thread in threads:
            thread.start()
        try:
            while batch := self._next_batch():
                self._answer(batch)
        except BaseException as error:  # an interrupt while waiting: stop every job before re-raising
            with self._lock:
                waiting, self._pending = self._pending, []
            self._fail(waiting, error)
            raise
        for thread in threads:
            thread.join()
        if self._failure is not None:
            raise self._failure

    def _work(self, queue) -> None:
        try:
            while True:
                with self._lock:
                    job = next(queue, None) if self._failure is None else None
                if job is None:
                    return
                job()
        except _Aborted:
            pass
        except BaseException as error:  # noqa: BLE001 - handed to the caller of run()
            with self._lock:
                self._failure = self._failure or error
        finally:
            with self._lock:
                self._running -= 1
                self._all_waiting.notify()

    def _next_batch(self) -> list[_Request]:
        """Waits until every running job has posted a point; empty once no job runs."""
        with self._lock:
            while self._running and len(self._pending) < self._running:
                self._all_waiting.wait()
            batch, self._pending = self._pending, []
            return batch

    def _fail(self, waiting: list[_Request], error: BaseException) -> None:
        with self._lock:
            self._failure = self._failure or error
        for request in waiting:
            request.error = error
            request.answered.set()

    def _answer(self, batch: list[_Request]) -> None:
        try:
            results = self._evaluate([request.item for request in batch])
        except BaseException as error:  # noqa: BLE001 - every waiting job is told, then run() re-raises
            self._fail(batch, error)
            return
        self.batch_sizes.append(len(batch))
        for request, result in zip(batch, results, strict=True):
            request.result = result
            request.answered.set()
