"""A dataset's report from the stores alone: what it reads, and the command that regenerates it."""

from __future__ import annotations

import shlex
from pathlib import Path

from bench.results.store import Record, read_model_metas, read_records


def report_records(dataset: str, results: Path) -> list[Record]:
    """A dataset's records as a report shows them, read without writing: the worst case is derived from the
    other cells here, so a store last written by an older bench (or a run killed before it stored them)
    reports the same worst case as a fresh one."""
    from bench.results.worst_case import ATTACK, worst_case_records

    records = [r for r in read_records(results, dataset=dataset) if r.attack != ATTACK]
    return sorted(records + worst_case_records(records), key=lambda r: r.name)


def write_report(dataset: str, results: Path, reports_dir: Path, out: Path | None = None) -> Path:
    """Write ``reports_dir/<dataset>/`` from the results store in the folder (or file) ``results``; the store
    is only read."""
    from bench.reports.render import write_dataset_report
    from models.store import ModelStore

    command = "bench report --dataset " + shlex.quote(dataset)
    if out is not None:  # the command that regenerates this report must read the same store
        command += " --out " + shlex.quote(str(out))
    if reports_dir != Path("reports"):
        command += " --reports-dir " + shlex.quote(str(reports_dir))
    records = report_records(dataset, results)
    return write_dataset_report(dataset, records, model_metas(results, ModelStore()), reports_dir, command)


def model_metas(results: Path, model_store) -> list[dict]:
    """The models' metadata as the results store kept it when its cells ran; for a store written before it kept
    them, the model store's entries, where this machine has them."""
    kept = read_model_metas(results)
    keys = {m["key"] for m in kept}
    return kept + [m for m in model_store.list() if m["key"] not in keys]
