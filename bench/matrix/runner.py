"""Runs the cells of a matrix: models from the store (trained if missing), one record per finished cell.

A cell that raises is recorded with its error and the run goes on; the failures are summarised at
the end. Finished cells are skipped on a rerun, so an interrupted run resumes where it stopped. Runs that share
one results store share the work: each craft group (and each model's gradient-health cells) is leased to one run
before it is crafted, and a group another run holds is waited for at the end (``bench.results.leases``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from bench.matrix.group_run import run_group
from bench.matrix.groups import CraftGroup, craft_groups
from bench.matrix.plan import Cell, MatrixOptions, Plan, models_needed
from bench.matrix.workbench import Workbench
from bench.results import diagnostics
from bench.results.leases import Claim, Leases, stored_status, take_turns
from bench.results.store import Record, ResultsStore
from models.store import ModelStore

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    diagnostics: int = 0  # gradient-health cells written (bench/results/diagnostics.py), beside the preset's cells
    groups_here: int = 0  # craft groups this run crafted
    groups_elsewhere: int = 0  # craft groups another run sharing the store finished while this one ran


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
        ``distributed.Client``), then the gradient-health cells here. Runs that share the results store share the
        work: each craft group is leased to one of them (``bench.results.leases``)."""
        self.bench = Workbench(self.options, plan.specs, self.out_dir, self.model_store)
        renamed = self.results.rename({c.hash: c.name for c in plan.cells})  # names follow the code
        if renamed:
            log.info("%d stored cells renamed to their current names", renamed)
        migrated = self.results.migrate_legacy_hashes()  # hashes too: rows of older benches keep counting as finished
        if migrated:
            log.info("%d gradient-health cells given the hashes of their configurations", migrated)
        with Leases(self.results.path) as leases:  # begun before reading the store: see Claim.finished_elsewhere
            summary = self._run(plan, client, leases)
        self._keep_model_metas(plan)
        return summary

    def _run(self, plan: Plan, client, leases: Leases) -> RunSummary:
        summary = RunSummary()
        finished = self.results.finished()
        todo = [c for c in plan.cells if c.hash not in finished]
        summary.skipped = len(plan.cells) - len(todo)
        if summary.skipped:
            log.info("%d of %d cells already finished; skipping them", summary.skipped, len(plan.cells))
        groups = craft_groups(todo)
        if client is None:
            for label in sorted(models_needed(todo)):  # train what is missing before any attack
                self.bench.estimator(plan.specs[label])
            self._keep_model_metas(plan)
        bar = tqdm(total=len(todo), desc="matrix", disable=not self.options.progress, unit="cell")
        for cell, record in self._shared(plan, groups, client, leases, summary):
            self.results.put(record)  # stored at once: a run killed mid-group keeps its finished cells
            if record.status == "ok":
                summary.done += 1
            else:
                log.error("cell %s failed: %s", cell.name, record.error.splitlines()[0])
                summary.failed.append((cell.name, record.error.splitlines()[0]))
            bar.update(1)
        bar.close()
        log.info("%d groups run here, %d left to another run", summary.groups_here, summary.groups_elsewhere)
        if diagnostics.wanted(self.options.attacks, self.options.settings):
            self._run_diagnostics(plan, summary, leases)
        return summary

    def _shared(
        self, plan: Plan, groups: list[CraftGroup], client, leases: Leases, summary: RunSummary
    ) -> Iterator[tuple[Cell, Record]]:
        """The records of the groups this run wins, each leased before it is crafted (the first free group in turn;
        on Dask every free one, submitted together) and released once its cells are stored. A group another run
        holds is come back to at the end; one another run finished meanwhile is left to it."""
        by_key = {_lease_key(g): g for g in groups}
        for won in take_turns(leases, list(by_key), many=client is not None):
            status = stored_status(self.results.path)
            chosen = []
            for key, claim in won:
                cells = _cells_left(by_key[key], claim, status)
                if cells:
                    chosen.append((by_key[key], cells))
                    continue
                leases.release(key)
                summary.groups_elsewhere += 1
            summary.groups_here += len(chosen)
            if chosen:
                yield from _released_when_stored(self._records(plan, chosen, client), chosen, leases)

    def _records(self, plan: Plan, chosen: list[tuple[CraftGroup, list[Cell]]], client) -> Iterator:
        groups, unfinished = [g for g, _ in chosen], {c.hash for _, cells in chosen for c in cells}
        if client is None:
            return _records_here(groups, unfinished, self.bench)
        from bench.matrix.dask_run import records_on_dask

        return records_on_dask(client, plan, groups, unfinished, self.options, self.out_dir)

    def _keep_model_metas(self, plan: Plan) -> None:
        """Copy the plan's models' metadata from the model store into the results store, so that reports need only
        the results store (a reader of committed results has no model store)."""
        keys = {spec.key() for spec in plan.specs.values()}
        self.results.put_models([m for m in self.model_store.list() if m["key"] in keys])

    def _run_diagnostics(self, plan: Plan, summary: RunSummary, leases: Leases) -> None:
        """Gradient health of every model on the preset's diagnostic images (cheap: one gradient each), each model
        leased like a craft group."""
        n, finished = plan.preset.diagnostic_samples, self.results.finished()
        seed = plan.preset.seed if self.options.seed is None else self.options.seed  # as expand() seeds cells
        subjects = {
            label: diagnostics.Subject(self.options.dataset, label, spec.key(), n, seed)
            for label, spec in plan.specs.items()
        }
        hashes = {label: subject.hashes() for label, subject in subjects.items()}
        labels = {
            f"diagnostics:{plan.specs[label].key()}:{n}:{seed}": label
            for label, by_check in hashes.items()
            if not all(h in finished for h in by_check.values())
        }
        for won in take_turns(leases, list(labels)):
            status = stored_status(self.results.path)
            for key, claim in won:
                label = labels[key]
                stored = [status.get(h) for h in hashes[label].values()]
                if None in stored or (not claim.finished_elsewhere and "error" in stored):
                    self._diagnose(subjects[label], plan.specs[label])
                    summary.diagnostics += len(hashes[label])
                leases.release(key)

    def _diagnose(self, subject: diagnostics.Subject, spec) -> None:
        """The gradient-health cells of one model, stored."""
        samples, device = self.bench.sample_set(subject.n, subject.seed), self.options.device
        start = time.perf_counter()
        shares = diagnostics.gradient_health(self.bench.estimator(spec), samples.x.to(device), samples.y.to(device))
        seconds = time.perf_counter() - start
        for record in diagnostics.health_records(subject, shares, samples.indices, seconds, self.bench.provenance()):
            self.results.put(record)


def _lease_key(group: CraftGroup) -> str:
    return f"group:{group.key}"


def _cells_left(group: CraftGroup, claim: Claim, status: dict[str, str]) -> list[Cell]:
    """The cells of ``group`` (those unfinished when this run began) to run now that its lease is won: those not
    stored since; after another run finished the group meanwhile, only those it did not store (its plan differed)."""
    if claim.finished_elsewhere:
        return [c for c in group.cells if c.hash not in status]
    return [c for c in group.cells if status.get(c.hash) != "ok"]


def _released_when_stored(
    pairs: Iterator[tuple[Cell, Record]], chosen: list[tuple[CraftGroup, list[Cell]]], leases: Leases
) -> Iterator[tuple[Cell, Record]]:
    """``pairs``, each group's lease released once its last record is stored (the caller stores each pair before
    it asks for the next)."""
    left = {_lease_key(g): len(cells) for g, cells in chosen}
    key_of = {c.hash: _lease_key(g) for g, cells in chosen for c in cells}
    for cell, record in pairs:
        yield cell, record
        key = key_of[cell.hash]
        left[key] -= 1
        if not left[key]:
            leases.release(key)


def _records_here(groups: list[CraftGroup], unfinished: set[str], bench: Workbench) -> Iterator[tuple[Cell, Record]]:
    """The serial executor: each group in turn, in this process."""
    for group in groups:
        cells = [c for c in group.cells if c.hash in unfinished]
        yield from run_group(group, cells, bench.group_inputs(group))
