"""Counting the forward and backward passes an attack makes, and what such passes cost on this machine.

The cost ratio of a cell is its wall time over the time its passes alone would take at the
throughput measured in the same run: 1.0 means the attack spends nothing beyond the network.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class PassCount:
    forward: int = 0  # images through a forward pass
    backward: int = 0  # images through a backward pass to the input
    calls: int = 0  # forward calls: forward / calls is the images per call the network saw


@contextmanager
def count_passes(network: nn.Module) -> Iterator[PassCount]:
    """Counts images through ``network``'s forward, and through backward passes that reach its input.

    The hooks sit on the backbone where there is one: every view of the model (scores, raw outputs,
    target-space outputs) runs through it, while only ``forward`` runs the top module's hooks. A backward pass is
    counted by a hook on the output of each forward whose input needs a gradient, not by a module backward hook,
    whose wrapping of every forward's inputs and outputs slowed the attacks' passes by about 4%
    (scripts/probe_vs_sustained.py)."""
    count = PassCount()
    module = getattr(network, "backbone", network)

    def on_backward(grad: torch.Tensor) -> None:
        count.backward += grad.shape[0]

    def on_forward(module, args, output):
        count.forward += args[0].shape[0]
        count.calls += 1
        if isinstance(output, torch.Tensor) and output.requires_grad and args[0].requires_grad:
            output.register_hook(on_backward)

    handle = module.register_forward_hook(on_forward)
    try:
        yield count
    finally:
        handle.remove()


@dataclass(frozen=True)
class Throughput:
    """Seconds per image of a forward pass, and of a backward pass to the input, at one batch size."""

    forward_s: float
    backward_s: float
    batch_size: int

    def seconds(self, passes: PassCount) -> float:
        return passes.forward * self.forward_s + passes.backward * self.backward_s

    @property
    def per_image(self) -> float:
        """Seconds of one forward and one backward pass per image."""
        return self.forward_s + self.backward_s

    def mean(self, other: Throughput) -> Throughput:
        """The mean of two timings of the same batch: the throughput before and after a craft."""
        half = (self.forward_s + other.forward_s) / 2, (self.backward_s + other.backward_s) / 2
        return Throughput(forward_s=half[0], backward_s=half[1], batch_size=self.batch_size)

    def scaled(self, factor: float) -> Throughput:
        return Throughput(self.forward_s * factor, self.backward_s * factor, self.batch_size)


def _now(x: torch.Tensor) -> float:
    """The time once the device has finished its queued work: CUDA runs asynchronously, so an unsynchronised clock
    would time the launches, not the passes."""
    if x.is_cuda:
        torch.cuda.synchronize(x.device)
    return time.perf_counter()


def measure_throughput(network: nn.Module, x: torch.Tensor, rounds: int = 3) -> Throughput:
    """Median time of forward and forward+backward on ``x`` (after a warm-up), per image."""
    network.eval()
    fwd, both = [], []
    for i in range(rounds + 1):
        start = _now(x)
        with torch.no_grad():
            network(x)
        mid = _now(x)
        x_req = x.clone().requires_grad_(True)
        out = network(x_req)
        torch.autograd.grad(out.sum(), x_req)
        end = _now(x)
        if i:  # the first round warms caches and allocators
            fwd.append(mid - start)
            both.append(end - mid)
    f, b = sorted(fwd)[len(fwd) // 2], sorted(both)[len(both) // 2]
    n = x.shape[0]
    return Throughput(forward_s=f / n, backward_s=max(b - f, 0.0) / n, batch_size=n)


BEST_BATCHES = (16, 32, 64, 128, 256, 512)  # where the best throughput is looked for
PROBE_AGE_S = 30.0  # a timing of the best batch younger than this prices the next craft too


class Prices:
    """What passes cost on one network: measured at the batch sizes asked (the batch an attack ran with), and at
    the best of ``BEST_BATCHES``: the price that shows what small batches cost, and what the hardware could do.
    Batch sizes are compared once per process; ``now`` times the best of them again around each craft."""

    def __init__(self, network: nn.Module, images: torch.Tensor, rounds: int = 3, max_age: float = PROBE_AGE_S):
        self.network, self.images = network, images  # images: at least max(BEST_BATCHES); only their time counts
        self.rounds = rounds  # timed rounds per batch size (the dry run's estimate takes 1)
        self.max_age = max_age  # seconds a timing of the best batch serves before ``now`` times it again
        self._measured: dict[int, Throughput] = {}
        self._latest: tuple[float, Throughput] | None = None  # (when, what) ``now`` last timed

    def at(self, batch: int) -> Throughput:
        batch = max(1, min(batch, len(self.images)))
        if batch not in self._measured:
            self._measured[batch] = measure_throughput(self.network, self.images[:batch], self.rounds)
        return self._measured[batch]

    def best(self) -> Throughput:
        return min((self.at(b) for b in BEST_BATCHES), key=lambda t: t.per_image)

    def now(self) -> Throughput:
        """The best batch timed again, unless ``now`` timed it less than ``max_age`` seconds ago. A craft is priced
        by the mean of its timings before and after: on a shared machine the throughput drifts within minutes
        (scripts/throughput_drift.py measures by how much), and one timing per process would read that drift as
        the attack's own cost."""
        if self._latest is None or time.perf_counter() - self._latest[0] > self.max_age:
            timed = measure_throughput(self.network, self.images[: self.best().batch_size], self.rounds)
            self._latest = (time.perf_counter(), timed)
        return self._latest[1]

    def drift(self, timed: Throughput) -> float:
        """How much slower (>1) or faster the best batch ran at ``timed`` than when the batch sizes were compared."""
        return timed.per_image / self.best().per_image
