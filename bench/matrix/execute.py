"""The work behind `bench matrix` and `bench report`: describing a plan, running it, writing the report."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tabulate import tabulate

from bench.matrix.plan import MatrixOptions, Plan, models_needed
from bench.matrix.runner import MatrixRunner, RunSummary
from bench.paths import results_dir
from bench.results import diagnostics
from bench.results.store import ResultsStore

log = logging.getLogger(__name__)


def results_store(out: Path | None) -> ResultsStore:
    return ResultsStore(results_dir(out) / "results.sqlite")


def describe_plan(
    plan: Plan, options: MatrixOptions, estimate: bool, out: Path | None = None, passes_from: Sequence[Path] = ()
) -> str:
    cells = plan.cells
    per = Counter((c.setting, c.attack) for c in cells)
    samples = {c.attack: c.n_samples for c in cells}
    lines = [
        f"preset {plan.preset.name!r}: {len(cells)} cells on {options.dataset}, models: {', '.join(plan.specs)}",
        "images per cell: " + ", ".join(f"{a}={n}" for a, n in sorted(samples.items())),
        tabulate(sorted((s, a, n) for (s, a), n in per.items()), headers=["setting", "attack", "cells"]),
    ]
    sharded = {c.attack: c.shard for c in cells if c.shard}
    if sharded:
        lines.insert(2, "crafted in shards of: " + ", ".join(f"{a}={n} images" for a, n in sorted(sharded.items())))
    if diagnostics.wanted(options.attacks, options.settings):
        n_cells = len(diagnostics.CHECKS) * len(plan.specs)
        lines.append(
            f"plus {n_cells} gradient-health cells on {plan.preset.diagnostic_samples} images "
            "(one loss gradient per image) and the worst case per model and eps, derived from the others"
        )
    if estimate:
        lines.append(estimate_run(plan, options, out, passes_from).describe())
    return "\n".join(lines)


def estimate_run(plan: Plan, options: MatrixOptions, out: Path | None = None, passes_from: Sequence[Path] = ()):
    """What running ``plan`` into the results under ``out`` will cost here: the cells not yet finished there, and
    the training of the models they need that the model store lacks (``bench.matrix.estimate``). Crafts are priced
    by the passes per image that store, or a store in ``passes_from``, measured for them, where one did."""
    from bench.matrix.estimate import estimate
    from bench.matrix.measured import measured_passes
    from bench.results.store import read_records, store_file
    from models.spec import ModelSpec
    from models.store import ModelStore

    folder = results_dir(out)
    stored = folder / "results.sqlite"
    records = read_records(stored) if stored.is_file() else []
    finished = {r.cell_hash for r in records if r.status == "ok"}
    given = [store_file(p) for p in passes_from]  # refuses a path without a results store, naming it
    measured = measured_passes([*records, *(r for path in given for r in read_records(path))])
    todo = [c for c in plan.cells if c.hash not in finished]
    models = ModelStore()
    missing = [
        m for m in sorted(models_needed(todo)) if isinstance(plan.specs[m], ModelSpec) and not models.has(plan.specs[m])
    ]
    result = estimate(plan, todo, missing, options.batch_size, options.codebook_key, measured)
    result.measured_from = tuple(str(p) for p in [*([stored] if records else []), *given])
    return result


def execute(plan: Plan, options: MatrixOptions, out: Path | None) -> tuple[RunSummary, ResultsStore]:
    """Run the plan into the results store under ``out`` (default BENCH_HOME/results) and store the worst cases
    it implies. Returns the run's summary and the store; writing a report is the caller's choice
    (``bench.reports.dataset.write_report``)."""
    from bench.results.worst_case import store_worst_cases

    folder = results_dir(out)
    store = ResultsStore(folder / "results.sqlite")
    if options.dask is None:
        summary = MatrixRunner(options, store, folder).run(plan)
    else:
        with dask_client(options) as client:
            summary = MatrixRunner(options, store, folder).run(plan, client)
    store_worst_cases(store, plan.dataset)
    return summary, store


@contextmanager
def dask_client(options: MatrixOptions) -> Iterator:
    """A ``distributed.Client`` on the scheduler or cluster of ``options.dask``; a cluster started here is closed."""
    from distributed import Client

    from bench.matrix.cluster import start_cluster

    settings = options.dask
    cluster = start_cluster(settings, options.device)
    client = Client(cluster if cluster is not None else settings.scheduler)
    log.info("Dask dashboard: %s", client.dashboard_link)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def reprice(dataset: str, store: ResultsStore, batch_size: int = 128) -> int:
    """Re-measure every cell's pass price on this machine at the batch size its attack ran with
    (min(batch_size, images per cell)), for stores written before passes were priced that way.
    Returns the number of records updated; nothing but ``pass_seconds`` changes."""
    import dataclasses

    from bench.data import datasets
    from bench.matrix.craft import sample_set
    from bench.matrix.passes import BEST_BATCHES, PassCount, Prices
    from models.spec import ModelSpec
    from models.store import ModelStore

    models, test, prices, updated = ModelStore(), datasets.load(dataset, "test"), {}, 0
    for record in store.records(dataset=dataset):
        if record.status != "ok" or not record.forward_passes:
            continue
        key = record.config.get("source_key") or record.model_key
        batch = min(batch_size, record.config["n_samples"])
        if key not in prices:
            spec = ModelSpec.from_dict(models.read_meta(models.root / key)["spec"])
            network = models.load(spec).network.eval()
            prices[key] = Prices(network, sample_set(test, max(*BEST_BATCHES, batch_size), 0).x)
        passes = PassCount(record.forward_passes, record.backward_passes or 0)
        store.put(dataclasses.replace(record, pass_seconds=prices[key].at(batch).seconds(passes)))
        updated += 1
    return updated
