"""The work behind `bench baseline` and `bench check`: the records of a preset's plan, run or read."""

from __future__ import annotations

from pathlib import Path

from bench.matrix.plan import MatrixOptions, make_plan
from bench.matrix.runner import MatrixRunner
from bench.paths import bench_home
from bench.results.store import Record, ResultsStore, read_records


def default_results_dir(options: MatrixOptions) -> Path:
    """A folder per dataset and preset, so that a gate never reads another preset's cells of the same name."""
    return bench_home() / "gate" / f"{options.dataset}-{Path(options.preset).stem}"


def plan_records(options: MatrixOptions, results_dir: Path | None, run: bool) -> list[Record]:
    """The records of the plan's cells, after running what is missing when ``run`` (else only read).

    Only cells of this plan count (by hash), so rows left in the store by other configurations are ignored;
    a cell of the plan that has no record shows up in the comparison as missing.
    """
    plan = make_plan(options)
    folder = results_dir or default_results_dir(options)
    if run:
        MatrixRunner(options, ResultsStore(folder / "results.sqlite"), folder).run(plan)
    wanted = {c.hash for c in plan.cells}
    # read without writing: a committed store checked with --results is never touched, a mistyped one is named
    return [r for r in read_records(folder) if r.cell_hash in wanted]
