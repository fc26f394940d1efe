"""The matrix on Dask (``bench matrix --executor dask``): one task per model to train and one per craft group, the
driver alone writing the results store as each group's records arrive.

- Train tasks are keyed by the model's store key, so one model is never trained twice in a run; a group task
  depends on the train tasks of the models it needs.
- A group task is one shard of a craft group (the whole group unless its cells are sharded: bench.matrix.shards),
  ``bench.matrix.group_run.run_shard`` on the worker's ``Workbench`` (built once per worker and run): the same
  seeds and the same code as the serial runner. The driver merges a group's shards into its records once the last
  arrives, so the records are the serial runner's however many workers shared the shards.
- Workers read the model store and the crafted-example cache from the driver's ``BENCH_HOME`` and results folder
  (a shared disk: one machine, or a cluster's shared file system), or, with ``shared_disk=False``, keep their own
  in a private folder, the models travelling through the scheduler: the driver's stored ones scattered to them,
  the ones trained on a worker returned by its train task and written into the driver's store.
- Faults: a task on a worker that dies is rescheduled by Dask; a task that raises is retried twice, then its
  cells are recorded as failed and the run goes on. The driver stores what arrives at once, so a killed driver is
  rerun with the same command and resumes from the store.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from bench.matrix.group_run import error_text, record_of, run_shard
from bench.matrix.groups import CraftGroup
from bench.matrix.plan import Cell, MatrixOptions, Plan, digest, models_needed
from bench.matrix.shards import shard_ranges
from bench.matrix.workbench import Workbench
from bench.results.store import Record
from models.checkpoint import replace_folder
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
    shared = options.dask.shared_disk
    where = (str(out_dir), str(store.root)) if shared else (None, None)  # None: the worker's private folders
    models = _model_tasks(client, plan, groups, options, where, store)
    tasks, todos = _shard_tasks(client, plan, groups, unfinished, options, where, models)
    parts: dict[str, dict[int, dict]] = {key: {} for key in todos}
    identity = Workbench(options, plan.specs, out_dir, store).identity
    for future in as_completed(tasks):
        group_key, first = tasks[future]
        todo = todos[group_key]
        try:
            parts[group_key][first] = future.result()
        except Exception as exc:  # failed three times, or its model could not be trained: the run goes on
            parts[group_key][first] = {cell.hash: error_text(exc) for cell in todo}
        if len(parts[group_key]) == _shard_count(todo):  # its last shard: the records
            done = parts.pop(group_key)
            shards = [done[first] for first in sorted(done)]
            yield from ((cell, record_of(cell, [s[cell.hash] for s in shards], identity)) for cell in todo)
    if not shared:  # the models trained on workers, into this machine's store for the report and later runs
        for future in models.values():
            if future.status == "finished":
                _unpack(store, future.result())


def _shard_tasks(client, plan: Plan, groups, unfinished: set[str], options, where: tuple, models: dict):
    """One task per shard of each group (one per group unless its cells are sharded), the longest first: the futures
    -> (group key, first image), and each group's unfinished cells by group key."""
    tasks, todos = {}, {}
    for group in groups:
        todo = todos[group.key] = [c for c in group.cells if c.hash in unfinished]
        specs = {label: plan.specs[label] for label in group.models}
        ready = [models[label] for label in sorted(group.models) if label in models]
        n = group.crafts[0].n_samples
        for first, end in shard_ranges(n, group.crafts[0].shard):
            key = f"group-{group.key}-{digest([c.hash for c in todo])}-{first}"
            args = (group, todo, specs, options, *where, first, end, *ready)
            priority = int(group.passes * (end - first) / n)
            tasks[client.submit(_shard, *args, key=key, retries=RETRIES, priority=priority)] = (group.key, first)
    return tasks, todos


def _shard_count(todo: list[Cell]) -> int:
    """How many shards the cells of one group (``todo``, which share their images) are crafted in."""
    return len(shard_ranges(todo[0].n_samples, todo[0].shard))


def _model_tasks(client, plan: Plan, groups, options, where: tuple, store: ModelStore) -> dict:
    """Per model label, what group tasks wait for: a train task for a model the store lacks (keyed by its store key,
    so it runs once); with no shared disk, also the stored models, sent to the workers through the scheduler."""
    out = {}
    for label in sorted(models_needed(c for g in groups for c in g.cells)):
        spec = plan.specs[label]
        if not isinstance(spec, ModelSpec):
            continue  # your own network travels inside the group's specs
        if not store.has(spec):
            out[label] = client.submit(_train, label, spec, options, *where, key=f"train-{spec.key()}")
        elif where[0] is None:  # no shared disk
            out[label] = client.scatter(_pack(store, spec))
    return out


def _pack(store: ModelStore, spec: ModelSpec) -> tuple[dict, dict[str, bytes]]:
    """A stored model as (its spec, its files): what a worker with no shared disk writes into its own store."""
    folder = store.path(spec)
    return spec.to_dict(), {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()}


def _unpack(store: ModelStore, packed: tuple[dict, dict[str, bytes]] | str) -> None:
    if isinstance(packed, str):  # a shared disk: the model is already in the store
        return
    spec = ModelSpec.from_dict(packed[0])
    if not store.has(spec):
        replace_folder(store.path(spec), lambda tmp: [(tmp / n).write_bytes(b) for n, b in packed[1].items()])


PRIVATE_FOLDER = "bench"  # a worker's results and models where there is no shared disk, in its local_directory
_BENCHES: dict[tuple, Workbench] = {}  # per worker process: one Workbench per run, so models load once


def _worker_bench(specs: dict, options: MatrixOptions, out_dir: str | None, models_root: str | None) -> Workbench:
    """This worker's Workbench for the run; with no shared disk (folders None), in the worker's private folders."""
    threads = os.environ.get("BENCH_TORCH_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    if out_dir is None or models_root is None:  # in the worker's Dask scratch folder, removed when the worker closes
        from distributed import get_worker

        private = Path(get_worker().local_directory) / PRIVATE_FOLDER
        out_dir, models_root = str(private / "results"), str(private / "models")
    key = (repr(options), out_dir, models_root)
    if key not in _BENCHES:
        _BENCHES[key] = Workbench(options, {}, Path(out_dir), ModelStore(Path(models_root)))
    bench = _BENCHES[key]
    bench.add_specs(specs)
    return bench


def _train(label: str, spec: ModelSpec, options: MatrixOptions, out_dir: str | None, models_root: str | None):
    """Train ``spec``, the plan's model ``label`` (O:SOFTMAX:CE@s1 with training seeds), into the worker's model
    store (a task keyed by the model's store key: it runs once). Returns the key on a shared disk, or the model's
    files to send on (``_pack``) where there is none."""
    bench = _worker_bench({label: spec}, options, out_dir, models_root)
    bench.estimator(spec)
    return spec.key() if out_dir else _pack(bench.model_store, spec)


def _shard(group: CraftGroup, todo: list[Cell], specs: dict, options, out_dir, models_root, first, end, *models):
    """Images [first, end) of a craft group, crafted and scored (a task): cell hash -> its outcome or error text.
    ``models``: what its train tasks returned, or the stored models sent."""
    bench = _worker_bench(specs, options, out_dir, models_root)
    for packed in models:
        _unpack(bench.model_store, packed)
    return run_shard(group, todo, bench.group_inputs(group), first, end)
