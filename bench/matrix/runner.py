"""Runs the cells of a matrix: models from the store (trained if missing), one record per finished cell.

A cell that raises is recorded with its error and the run goes on; the failures are summarised at
the end. Finished cells are skipped on a rerun, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from bench.data import datasets
from bench.matrix.craft import Crafter, SampleSet, sample_set
from bench.matrix.group_run import GroupInputs, run_group
from bench.matrix.groups import CraftGroup, craft_groups
from bench.matrix.passes import BEST_BATCHES, Prices
from bench.matrix.plan import Cell, MatrixOptions, Plan
from bench.provenance import git_commit, versions
from bench.results import diagnostics
from bench.results.store import Record, ResultsStore, encode_indices
from models.estimator import BenchClassifier, make_estimator
from models.external import ExternalModel
from models.spec import ModelSpec
from models.store import ModelStore
from models.zoo import obtain

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
        self.crafter = Crafter(out_dir / "adversarial", options.batch_size)
        self._estimators: dict[str, BenchClassifier] = {}
        self._throughput: dict[str, Prices] = {}
        self._samples: dict[tuple[int, int], SampleSet] = {}
        self._test: datasets.Split | None = None
        self._specs: dict = {}

    def run(self, plan: Plan) -> RunSummary:
        summary = RunSummary()
        self._specs = plan.specs
        renamed = self.results.rename({c.hash: c.name for c in plan.cells})  # names follow the code
        if renamed:
            log.info("%d stored cells renamed to their current names", renamed)
        finished = self.results.finished()
        todo = [c for c in plan.cells if c.hash not in finished]
        summary.skipped = len(plan.cells) - len(todo)
        if summary.skipped:
            log.info("%d of %d cells already finished; skipping them", summary.skipped, len(plan.cells))
        needed = {c.model for c in todo} | {c.source for c in todo if c.source}
        for label in sorted(needed):  # train what is missing before any attack
            self._estimator(plan.specs[label])
        bar = tqdm(total=len(todo), desc="matrix", disable=not self.options.progress, unit="cell")
        unfinished = {c.hash for c in todo}
        for group in craft_groups(todo):
            bar.set_postfix_str(group.describe()[-70:])
            cells = [c for c in group.cells if c.hash in unfinished]
            for cell, record in run_group(group, cells, self._group_inputs(group)):
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
        return summary

    def _run_diagnostics(self, plan: Plan, summary: RunSummary) -> None:
        """Gradient health of every model on the preset's diagnostic images (cheap: one gradient each)."""
        n, finished, device = plan.preset.diagnostic_samples, self.results.finished(), self.options.device
        seed = plan.preset.seed if self.options.seed is None else self.options.seed  # as expand() seeds cells
        samples = self._sample_set(n, seed)
        for label, spec in plan.specs.items():
            hashes = {c: diagnostics.diagnostic_hash(c, spec.key(), n, seed) for c in diagnostics.CHECKS}
            if all(h in finished for h in hashes.values()):
                continue
            start = time.perf_counter()
            shares = diagnostics.gradient_health(self._estimator(spec), samples.x.to(device), samples.y.to(device))
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
                        **self._provenance(),
                    )
                )
                summary.diagnostics += 1

    def _estimator(self, spec: ModelSpec | ExternalModel) -> BenchClassifier:
        key = spec.key()
        if key not in self._estimators and isinstance(spec, ExternalModel):
            self._estimators[key] = spec.estimator(self.options.device)
        if key not in self._estimators:
            o = self.options
            stored = obtain(
                spec,
                self.model_store,
                data_dir=o.data_dir,
                device=o.device,
                codebook_key=o.codebook_key,
                progress=o.progress,
            )
            input_shape = tuple(stored.meta["input_shape"])
            est = make_estimator(spec, stored.network, input_shape, stored.meta["n_classes"], o.device)
            self._estimators[key] = est
        return self._estimators[key]

    def _group_inputs(self, group: CraftGroup) -> GroupInputs:
        first = group.crafts[0]
        return GroupInputs(
            estimators={label: self._estimator(self._specs[label]) for label in group.models},
            samples=self._sample_set(first.n_samples, first.seed),
            crafter=self.crafter,
            prices=self._prices,
            identity=self._identity,
            device=self.options.device,
        )

    def _prices(self, label: str) -> Prices:
        """What passes cost on this model, by batch size (measured once per model and batch)."""
        key = self._specs[label].key()
        if key not in self._throughput:
            probe = self._sample_set(max(BEST_BATCHES), 0).x.to(self.options.device)  # only the time counts
            self._throughput[key] = Prices(self._estimator(self._specs[label]).network, probe)
        return self._throughput[key]

    def _sample_set(self, n: int, seed: int) -> SampleSet:
        """n test images drawn by ``seed``: the cell's seed, which the stored record keeps, so the worst case
        can find each record's images again (bench.results.worst_case.image_indices)."""
        if self._test is None:
            self._test = datasets.load(self.options.dataset, "test", self.options.data_dir)
        if (n, seed) not in self._samples:
            self._samples[(n, seed)] = sample_set(self._test, n, seed)
        return self._samples[(n, seed)]

    def _identity(self, cell: Cell) -> dict:
        return {
            "cell_hash": cell.hash,
            "name": cell.name,
            "dataset": cell.dataset,
            "model": cell.model,
            "model_key": cell.model_key,
            "setting": cell.setting,
            "source": cell.source,
            "attack": cell.attack,
            "param": cell.param,
            "value": cell.value,
            "config": {**cell.config(), "tables": list(cell.tables), **self._probes(cell)},
            "seed": cell.seed,
            **self._provenance(),
        }

    def _probes(self, cell: Cell) -> dict:
        """What the models were, without the code hashes of plugins (stored, not hashed): the gate compares a model
        retrained from edited code by its rates, but one trained otherwise (epochs, architecture) as changed."""
        probes = {"model_probe": self._specs[cell.model].probe()}
        if cell.source:
            probes["source_probe"] = self._specs[cell.source].probe()
        return probes

    def _provenance(self) -> dict:
        return {
            "device": self.options.device,
            "commit_id": git_commit(),
            "versions": versions(),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
