"""A dataset's report from the stores alone: what it reads, and the command that regenerates it."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from bench.reports.beside import beside_note, named_beside, shown_names
from bench.results.store import Record, read_model_metas, read_records


def report_records(dataset: str, results: Path, beside: Sequence[Path] = ()) -> list[Record]:
    """A dataset's records as a report shows them, read without writing: the worst case is derived from the
    other cells here (per store), so a store last written by an older bench (or a run killed before it stored
    them) reports the same worst case as a fresh one. The records of the ``beside`` stores follow, their models
    named by recipe where a name is taken (``bench.reports.beside``)."""
    records = _store_records(dataset, results)
    for other in beside:
        named = named_beside(_store_records(dataset, other), read_model_metas(other), shown_names(records), str(other))
        records += named
    return sorted(records, key=lambda r: r.name)


def _store_records(dataset: str, results: Path) -> list[Record]:
    from bench.results.worst_case import ATTACK, worst_case_records

    records = [r for r in read_records(results, dataset=dataset) if r.attack != ATTACK]
    return records + worst_case_records(records)


def write_report(
    dataset: str, results: Path, reports_dir: Path, out: Path | None = None, beside: Sequence[Path] = ()
) -> Path:
    """Write ``reports_dir/<dataset>/`` from the results store in the folder (or file) ``results``, with the models
    of the ``beside`` stores next to its own; the stores are only read."""
    from bench.reports.render import write_dataset_report
    from models.store import ModelStore

    command = "bench report --dataset " + shlex.quote(dataset)
    if out is not None:  # the command that regenerates this report must read the same store
        command += " --out " + shlex.quote(str(out))
    if reports_dir != Path("reports"):
        command += " --reports-dir " + shlex.quote(str(reports_dir))
    command += "".join(f" --beside {shlex.quote(str(other))}" for other in beside)
    records = report_records(dataset, results, beside)
    metas = model_metas(results, ModelStore())
    known = {m["key"] for m in metas}
    metas += [m for other in beside for m in read_model_metas(other) if m["key"] not in known]
    note = beside_note(records, [str(other) for other in beside])
    return write_dataset_report(dataset, records, metas, reports_dir, command, note)


def model_metas(results: Path, model_store) -> list[dict]:
    """The models' metadata as the results store kept it when its cells ran; for a store written before it kept
    them, the model store's entries, where this machine has them."""
    kept = read_model_metas(results)
    keys = {m["key"] for m in kept}
    return kept + [m for m in model_store.list() if m["key"] not in keys]
