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
from bench.results.metrics import perturbation_sizes, wilson_interval
from bench.results.store import Record, encode_indices
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
    """One record per cell of ``todo`` (the group's unfinished cells), yielded as each is scored so that the caller
    stores it at once. A craft that raises fails the cells that needed it, each recorded with the error."""
    try:
        crafted = inputs.crafter.craft_group(group.crafts, inputs.estimators[group.craft_model], inputs.samples)
    except Exception as exc:  # the group's cells are recorded as failed, the run goes on
        for cell in todo:
            yield cell, error_record(cell, exc, inputs.identity)
        return
    first_use: set[str] = set()
    clean: dict[str, torch.Tensor] = {}
    for cell in todo:
        try:
            craft = crafted[cell.craft_key]
            reused = craft.reused or cell.craft_key in first_use  # a second cell on the same craft did not make it
            first_use.add(cell.craft_key)
            record = score_cell(cell, craft, reused, inputs, clean)
        except Exception as exc:
            record = error_record(cell, exc, inputs.identity)
        yield cell, record


def score_cell(cell: Cell, crafted: Crafted, reused: bool, inputs: GroupInputs, clean: dict) -> Record:
    start = time.perf_counter()
    samples = inputs.samples
    target = inputs.estimators[cell.model]
    predicted = _scores(target, crafted.x_adv, inputs.device).argmax(1)
    hit = predicted == labels_for(cell, samples)  # targeted: the attack succeeded; untargeted: the model is still right
    worked = hit if cell.targeted else ~hit
    if cell.model not in clean:
        clean[cell.model] = _scores(target, samples.x, inputs.device).argmax(1) == samples.y
    hits, n = int(hit.sum()), len(hit)
    low, high = wilson_interval(hits, n)
    sizes = perturbation_sizes(samples.x, crafted.x_adv, worked)
    passes, prices = crafted.passes, inputs.prices(cell.craft_model)
    return Record(
        **inputs.identity(cell),
        status="ok",
        metric=cell.metric,
        rate=hits / n,
        ci_low=low,
        ci_high=high,
        n=n,
        hits=hits,
        clean_accuracy=clean[cell.model].float().mean().item(),
        l2_mean=sizes.l2_mean,
        l2_median=sizes.l2_median,
        linf_mean=sizes.linf_mean,
        linf_median=sizes.linf_median,
        seconds=(0.0 if reused else crafted.seconds) + time.perf_counter() - start,
        craft_seconds=crafted.seconds,
        craft_reused=reused,
        examples_per_second=n / crafted.seconds if crafted.seconds else None,
        forward_passes=passes.forward,
        backward_passes=passes.backward,
        pass_seconds=prices.at(crafted.batch).seconds(passes),
        best_pass_seconds=prices.best().seconds(passes),
        per_example=np.packbits(hit.numpy()).tobytes(),
        image_indices=encode_indices(samples.indices),
    )


def _scores(estimator, x: torch.Tensor, device: str) -> torch.Tensor:
    return predict_scores(estimator.network, x, device=device)


def error_record(cell: Cell, exc: Exception, identity: Callable[[Cell], dict[str, Any]]) -> Record:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
    return Record(**identity(cell), status="error", error=f"{type(exc).__name__}: {exc}\n{tb}")
