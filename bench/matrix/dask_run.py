"""The matrix on Dask (``bench matrix --executor dask``): one task per model to train and one per craft group, the
driver alone writing the results store as each group's records arrive.

- Train tasks are keyed by the model's store key, so one model is never trained twice in a run; a group task
  depends on the train tasks of the models it needs.
- A group task is ``bench.matrix.group_run.run_group`` on the worker's ``Workbench`` (built once per worker and
  run): the same seeds and the same code as the serial runner, so the same records.
- Workers read the model store and the crafted-example cache from the driver's ``BENCH_HOME`` and results folder:
  a shared disk (one machine, or a cluster's shared file system).
- Faults: a task on a worker that dies is rescheduled by Dask; a task that raises is retried twice, then its
  cells are recorded as failed and the run goes on. The driver stores what arrives at once, so a killed driver is
  rerun with the same command and resumes from the store.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from bench.matrix.group_run import error_record, run_group
from bench.matrix.groups import CraftGroup
from bench.matrix.plan import Cell, MatrixOptions, Plan
from bench.matrix.workbench import Workbench
from bench.results.store import Record
from models.spec import ModelSpec
from models.store import ModelStore

log = logging.getLogger(__name__)
RETRIES = 2  # a task that raises runs three times before its cells are recorded as failed


def records_on_dask(
    client, plan: Plan, groups: list[CraftGroup], unfinished: set[str], options: MatrixOptions, out_dir: Path
) -> Iterator[tuple[Cell, Record]]:
    """Every unfinished cell's record, as its group's task finishes (in no fixed order)."""
    from distributed import as_completed

    store = ModelStore()
    needed = {label for g in groups for label in g.models}
    trains = {
        label: client.submit(
            _train, plan.specs[label], options, str(out_dir), str(store.root), key=_train_key(plan, label)
        )
        for label in sorted(needed)
        if isinstance(plan.specs[label], ModelSpec) and not store.has(plan.specs[label])
    }
    tasks = {}
    for group in groups:
        todo = [c for c in group.cells if c.hash in unfinished]
        specs = {label: plan.specs[label] for label in group.models}
        ready = [trains[label] for label in sorted(group.models) if label in trains]
        key = f"group-{group.key}-{_digest([c.hash for c in todo])}"
        args = (group, todo, specs, options, str(out_dir), str(store.root), *ready)
        tasks[client.submit(_group, *args, key=key, retries=RETRIES)] = todo
    identity = Workbench(options, plan.specs, out_dir, store).identity
    for future in as_completed(tasks):
        todo = tasks[future]
        try:
            records = future.result()
        except Exception as exc:  # failed three times, or its model could not be trained: the run goes on
            records = [error_record(cell, exc, identity) for cell in todo]
        yield from zip(todo, records, strict=True)


def _digest(values: list[str]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(values).encode()).hexdigest()[:12]


_BENCHES: dict[tuple, Workbench] = {}  # per worker process: one Workbench per run, so models load once


def _worker_bench(specs: dict, options: MatrixOptions, out_dir: str, models_root: str) -> Workbench:
    threads = os.environ.get("BENCH_TORCH_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    key = (repr(options), out_dir, models_root)
    if key not in _BENCHES:
        _BENCHES[key] = Workbench(options, {}, Path(out_dir), ModelStore(Path(models_root)))
    bench = _BENCHES[key]
    bench.add_specs(specs)
    return bench


def _train_key(plan: Plan, label: str) -> str:
    return f"train-{plan.specs[label].key()}"


def _train(spec: ModelSpec, options: MatrixOptions, out_dir: str, models_root: str) -> str:
    """Train ``spec`` into the model store (a task: its key is the model's, so it runs once per run)."""
    bench = _worker_bench({spec.loss_label: spec}, options, out_dir, models_root)
    bench.estimator(spec)
    return spec.key()


def _group(group: CraftGroup, todo: list[Cell], specs: dict, options, out_dir: str, models_root: str, *_ready):
    """One craft group's records (a task). ``_ready``: the train tasks it waited for."""
    bench = _worker_bench(specs, options, out_dir, models_root)
    return [record for _, record in run_group(group, todo, bench.group_inputs(group))]
