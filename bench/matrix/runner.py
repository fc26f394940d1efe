"""Runs the cells of a matrix: models from the store (trained if missing), one record per finished cell.

A cell that raises is recorded with its error and the run goes on; the failures are summarised at
the end. Finished cells are skipped on a rerun, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from bench.matrix.group_run import run_group
from bench.matrix.groups import CraftGroup, craft_groups
from bench.matrix.plan import Cell, MatrixOptions, Plan, models_needed
from bench.matrix.workbench import Workbench
from bench.results import diagnostics
from bench.results.store import Record, ResultsStore, encode_indices
from models.store import ModelStore

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    diagnostics: int = 0  # gradient-health cells written (bench/results/diagnostics.py), beside the preset's cells


class MatrixRunner:
    def __init__(
        self, options: MatrixOptions, results: ResultsStore, out_dir: Path, model_store: ModelStore | None = None
    ) -> None:
        self.options = options
        self.results = results
        self.model_store = model_store or ModelStore()
        self.out_dir = out_dir
        self.bench: Workbench | None = None

    def run(self, plan: Plan, client=None) -> RunSummary:
        """Every unfinished cell of ``plan``, here in turn, or as Dask tasks through ``client`` (a
        ``distributed.Client``), then the gradient-health cells here."""
        summary = RunSummary()
        self.bench = Workbench(self.options, plan.specs, self.out_dir, self.model_store)
        renamed = self.results.rename({c.hash: c.name for c in plan.cells})  # names follow the code
        if renamed:
            log.info("%d stored cells renamed to their current names", renamed)
        finished = self.results.finished()
        todo = [c for c in plan.cells if c.hash not in finished]
        summary.skipped = len(plan.cells) - len(todo)
        if summary.skipped:
            log.info("%d of %d cells already finished; skipping them", summary.skipped, len(plan.cells))
        unfinished = {c.hash for c in todo}
        groups = craft_groups(todo)
        if client is None:
            for label in sorted(models_needed(todo)):  # train what is missing before any attack
                self.bench.estimator(plan.specs[label])
            self._keep_model_metas(plan)
            pairs = _records_here(groups, unfinished, self.bench)
        else:
            from bench.matrix.dask_run import records_on_dask

            pairs = records_on_dask(client, plan, groups, unfinished, self.options, self.out_dir)
        bar = tqdm(total=len(todo), desc="matrix", disable=not self.options.progress, unit="cell")
        for cell, record in pairs:
            self.results.put(record)  # stored at once: a run killed mid-group keeps its finished cells
            if record.status == "ok":
                summary.done += 1
            else:
                log.error("cell %s failed: %s", cell.name, record.error.splitlines()[0])
                summary.failed.append((cell.name, record.error.splitlines()[0]))
            bar.update(1)
        bar.close()
        if diagnostics.wanted(self.options.attacks, self.options.settings):
            self._run_diagnostics(plan, summary)
        self._keep_model_metas(plan)
        return summary

    def _keep_model_metas(self, plan: Plan) -> None:
        """Copy the plan's models' metadata from the model store into the results store, so that reports need only
        the results store (a reader of committed results has no model store)."""
        keys = {spec.key() for spec in plan.specs.values()}
        self.results.put_models([m for m in self.model_store.list() if m["key"] in keys])

    def _run_diagnostics(self, plan: Plan, summary: RunSummary) -> None:
        """Gradient health of every model on the preset's diagnostic images (cheap: one gradient each)."""
        n, finished, device = plan.preset.diagnostic_samples, self.results.finished(), self.options.device
        seed = plan.preset.seed if self.options.seed is None else self.options.seed  # as expand() seeds cells
        samples = self.bench.sample_set(n, seed)
        for label, spec in plan.specs.items():
            hashes = {c: diagnostics.diagnostic_hash(c, spec.key(), n, seed) for c in diagnostics.CHECKS}
            if all(h in finished for h in hashes.values()):
                continue
            start = time.perf_counter()
            shares = diagnostics.gradient_health(self.bench.estimator(spec), samples.x.to(device), samples.y.to(device))
            seconds = time.perf_counter() - start
            for check, flags in shares.items():
                flags = flags.cpu()
                self.results.put(
                    Record(
                        cell_hash=hashes[check],
                        name=f"{self.options.dataset}/{diagnostics.SETTING}/{check}/{label}",
                        dataset=self.options.dataset,
                        model=label,
                        model_key=spec.key(),
                        setting=diagnostics.SETTING,
                        source=None,
                        attack=check,
                        param=None,
                        value=None,
                        config={"check": check, "n_samples": n, "revision": diagnostics.REVISION, "tables": []},
                        **diagnostics.share_fields(flags),
                        seconds=seconds,
                        per_example=np.packbits(flags.numpy()).tobytes(),
                        image_indices=encode_indices(samples.indices),
                        seed=seed,
                        **self.bench.provenance(),
                    )
                )
                summary.diagnostics += 1


def _records_here(groups: list[CraftGroup], unfinished: set[str], bench: Workbench) -> Iterator[tuple[Cell, Record]]:
    """The serial executor: each group in turn, in this process."""
    for group in groups:
        cells = [c for c in group.cells if c.hash in unfinished]
        yield from run_group(group, cells, bench.group_inputs(group))
