"""Running one craft group: its crafts (cached, or crafted in one call where the attack allows), then one record per
cell, scored on the model the cell names. A plain function of the group and what it is given, with no state of its
own beyond the crafts cache on disk: the unit of work a run hands out (``bench.matrix.runner`` in this process).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench.matrix.craft import Crafted, Crafter, SampleSet, labels_for
from bench.matrix.groups import CraftGroup
from bench.matrix.passes import Prices
from bench.matrix.plan import Cell
from bench.matrix.shards import Outcome, merge, shard_ranges
from bench.results.metrics import per_image_norms
from bench.results.store import Record
from models.inference import predict_scores


@dataclass
class GroupInputs:
    """Everything a group needs besides itself."""

    estimators: Mapping[str, Any]  # label -> the estimator of every model the group crafts on or scores
    samples: SampleSet  # the group's images (its cells share n_samples and seed)
    crafter: Crafter  # crafts, and caches them by craft key
    prices: Callable[[str], Prices]  # label -> what passes cost on that model
    identity: Callable[[Cell], dict[str, Any]]  # a cell's stored identity and provenance (names, config, probes)
    device: str = "cpu"


def run_group(group: CraftGroup, todo: Sequence[Cell], inputs: GroupInputs) -> Iterator[tuple[Cell, Record]]:
    """One record per cell of ``todo`` (the group's unfinished cells), shard after shard (one shard unless its
    cells are sharded: bench.matrix.shards), yielded once each cell's last shard is scored so that the caller
    stores it at once. A craft that raises fails the cells that needed it, each recorded with the error."""
    parts: dict[str, list[Outcome | str]] = {c.hash: [] for c in todo}
    for first, end in shard_ranges(len(inputs.samples.y), group.crafts[0].shard):
        for key, outcome in run_shard(group, todo, inputs, first, end).items():
            parts[key].append(outcome)
    for cell in todo:
        yield cell, record_of(cell, parts[cell.hash], inputs.identity)


def run_shard(group: CraftGroup, todo: Sequence[Cell], inputs: GroupInputs, first: int, end: int) -> dict:
    """Images [first, end) of the group, crafted and scored: cell hash -> its ``Outcome``, or the error text where
    its craft or its scoring raised."""
    samples = inputs.samples.part(first, end)
    try:
        clock = inputs.prices(group.craft_model).now
        crafted = inputs.crafter.craft_group(group.crafts, inputs.estimators[group.craft_model], samples, first, clock)
    except Exception as exc:  # the group's cells are recorded as failed, the run goes on
        return {cell.hash: error_text(exc) for cell in todo}
    first_use: set[str] = set()
    clean: dict[str, torch.Tensor] = {}
    out: dict[str, Outcome | str] = {}
    for cell in todo:
        try:
            craft = crafted[cell.craft_key]
            reused = craft.reused or cell.craft_key in first_use  # a second cell on the same craft did not make it
            first_use.add(cell.craft_key)
            out[cell.hash] = score_shard(cell, craft, reused, inputs, samples, clean)
        except Exception as exc:
            out[cell.hash] = error_text(exc)
    return out


def record_of(cell: Cell, parts: Sequence[Outcome | str], identity: Callable[[Cell], dict[str, Any]]) -> Record:
    """The cell's record from its shards' outcomes; an error record if any shard failed."""
    errors = [p for p in parts if isinstance(p, str)]
    return error_record(cell, errors[0], identity) if errors else merge(cell, parts, identity)


def score_shard(cell: Cell, crafted: Crafted, reused: bool, inputs: GroupInputs, samples, clean: dict) -> Outcome:
    """The cell on one shard's images: per-image results, and the shard's time and passes."""
    start = time.perf_counter()
    target = inputs.estimators[cell.model]
    predicted = _scores(target, crafted.x_adv, inputs.device).argmax(1)
    hit = predicted == labels_for(cell, samples)  # targeted: the attack succeeded; untargeted: the model is still right
    if cell.model not in clean:
        clean[cell.model] = _scores(target, samples.x, inputs.device).argmax(1) == samples.y
    l2, linf = per_image_norms(samples.x, crafted.x_adv)
    passes, prices = crafted.passes, inputs.prices(cell.craft_model)
    best = crafted.price or prices.best()  # crafts cached before they were timed: this process's comparison
    return Outcome(
        hit=hit.numpy(),
        worked=(hit if cell.targeted else ~hit).numpy(),
        clean=clean[cell.model].numpy(),
        l2=l2.numpy(),
        linf=linf.numpy(),
        indices=np.asarray(samples.indices),
        craft_seconds=crafted.seconds,
        seconds=(0.0 if reused else crafted.seconds) + time.perf_counter() - start,
        reused=reused,
        forward=passes.forward,
        backward=passes.backward,
        pass_seconds=prices.at(crafted.batch).scaled(prices.drift(best)).seconds(passes),
        best_pass_seconds=best.seconds(passes),
    )


def _scores(estimator, x: torch.Tensor, device: str) -> torch.Tensor:
    return predict_scores(estimator.network, x, device=device)


def error_text(exc: Exception) -> str:
    """An exception as a record keeps it: its type, message and the last frames of its traceback."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
    return f"{type(exc).__name__}: {exc}\n{tb}"


def error_record(cell: Cell, error: Exception | str, identity: Callable[[Cell], dict[str, Any]]) -> Record:
    text = error if isinstance(error, str) else error_text(error)
    return Record(**identity(cell), status="error", error=text)
