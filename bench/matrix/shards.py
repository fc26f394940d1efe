"""Image shards: a large cell crafted in pieces of a size the cell fixes, merged into the record of the whole.

A cell with ``shard = k`` (the preset's ``shard_images``, or ``--shard-images``) is crafted over its images
``[0, k), [k, 2k), ...``, each shard seeded from the cell's craft key, its seed and the shard's first index
(bench.matrix.craft), never from the number of workers, so the record is the same however the shards are
shared out. Scoring a shard gives an ``Outcome`` per cell: the per-image results and the shard's time and
passes; ``merge`` makes the cell's record from its shards' outcomes alone (the interval, the norms of the
images where the attack worked, the sums of time and passes), so a distributed run's driver needs no model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench.matrix.plan import Cell
from bench.results.metrics import sizes_of, wilson_interval
from bench.results.store import Record, encode_indices


def shard_ranges(n: int, size: int) -> list[tuple[int, int]]:
    """[first, end) of each shard of ``n`` images in shards of ``size`` (0: one shard of all of them)."""
    if size <= 0 or size >= n:
        return [(0, n)]
    return [(first, min(first + size, n)) for first in range(0, n, size)]


@dataclass
class Outcome:
    """One shard of one cell, scored: per image, then the shard's share of the work."""

    hit: np.ndarray  # the model is still right (untargeted) or the target was reached (targeted)
    worked: np.ndarray  # the attack worked on the image
    clean: np.ndarray  # the model is right on the clean image
    l2: np.ndarray  # norms of x_adv - x, float64
    linf: np.ndarray
    indices: np.ndarray  # the images' indices in the test split
    craft_seconds: float
    seconds: float  # what the cell is charged: its craft (unless reused) and its scoring
    reused: bool
    forward: int
    backward: int
    pass_seconds: float
    best_pass_seconds: float


def merge(cell: Cell, parts: Sequence[Outcome], identity: Callable[[Cell], dict[str, Any]]) -> Record:
    """The record of ``cell`` from the outcomes of its shards, in order of their first image."""
    hit, worked, clean = (np.concatenate([getattr(p, f) for p in parts]) for f in ("hit", "worked", "clean"))
    l2, linf = (torch.from_numpy(np.concatenate([getattr(p, f) for p in parts])) for f in ("l2", "linf"))
    sizes = sizes_of(l2, linf, torch.from_numpy(worked))
    hits, n = int(hit.sum()), len(hit)
    low, high = wilson_interval(hits, n)
    craft_seconds = sum(p.craft_seconds for p in parts)
    return Record(
        **identity(cell),
        status="ok",
        metric=cell.metric,
        rate=hits / n,
        ci_low=low,
        ci_high=high,
        n=n,
        hits=hits,
        clean_accuracy=torch.from_numpy(clean).float().mean().item(),  # as a cell in one piece had it
        l2_mean=sizes.l2_mean,
        l2_median=sizes.l2_median,
        linf_mean=sizes.linf_mean,
        linf_median=sizes.linf_median,
        seconds=sum(p.seconds for p in parts),
        craft_seconds=craft_seconds,
        craft_reused=all(p.reused for p in parts),
        examples_per_second=n / craft_seconds if craft_seconds else None,
        forward_passes=sum(p.forward for p in parts),
        backward_passes=sum(p.backward for p in parts),
        pass_seconds=sum(p.pass_seconds for p in parts),
        best_pass_seconds=sum(p.best_pass_seconds for p in parts),
        per_example=np.packbits(hit).tobytes(),
        image_indices=encode_indices(np.concatenate([p.indices for p in parts])),
    )
