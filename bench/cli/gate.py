"""`bench check` and `bench baseline`: the regression gate."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.common import check_device


def _gate_options(dataset, preset, seed, device, progress):
    from bench.data.datasets import DATASETS
    from bench.matrix.plan import MatrixOptions

    check_device(device)
    return MatrixOptions(
        dataset=DATASETS.canonical(dataset), preset=preset, seed=seed, device=device, progress=progress
    )


def _gate_flags(command):
    for option in reversed(
        [
            click.option("--dataset", required=True, help="mnist, fashion_mnist or cifar10."),
            click.option("--preset", default="quick", show_default=True, help="The preset whose cells are compared."),
            click.option("--seed", type=click.IntRange(0), default=None, help="Seed (preset: 0)."),
            click.option("--device", default="cpu", show_default=True),
            click.option(
                "--results",
                type=click.Path(path_type=Path, file_okay=False),
                default=None,
                help="Read this results folder (with results.sqlite) instead of running the preset.",
            ),
            click.option(
                "--run-dir",
                type=click.Path(path_type=Path, file_okay=False),
                default=None,
                help="Where to run the preset (default BENCH_HOME/gate/<dataset>-<preset>); finished cells are kept.",
            ),
            click.option("--progress/--no-progress", default=True, show_default=True),
        ]
    ):
        command = option(command)
    return command


EPILOG_CHECK = """\b
Examples:
  bench check --dataset mnist --baseline reports/baselines/mnist-quick.json
  bench check --dataset mnist --baseline base.json --results runs/today --tolerance 0.02

A cell drifts when its Wilson 95% interval and the baseline's do not overlap (two independent samples);
--tolerance widens both by a fixed amount. A cell missing on either side, errored, or run with another
configuration fails the gate too. Exit status: 0 all cells agree, 1 the gate failed, 2 bad input.
"""


@click.command(epilog=EPILOG_CHECK)
@_gate_flags
@click.option("--baseline", type=click.Path(path_type=Path), required=True, help="The baseline JSON to compare with.")
@click.option("--tolerance", type=float, default=0.0, show_default=True, help="Added to the intervals' gap.")
@click.option("--strict", is_flag=True, help="Cells that are not in the baseline fail too.")
def check(dataset, preset, seed, device, results, run_dir, progress, baseline, tolerance, strict) -> None:
    """Compare a run of a preset (by default run now) with a committed baseline; fail on drift."""
    from bench.matrix.gate_run import plan_records
    from bench.results.gate import compare, read_baseline

    base = read_baseline(baseline)  # a malformed baseline is refused before any work
    options = _gate_options(dataset, preset, seed, device, progress)
    if base["dataset"] != options.dataset:  # every cell would read "missing" instead
        from bench.errors import ConfigError

        raise ConfigError(
            f"baseline {baseline} is of dataset {base['dataset']!r}; this check is of {options.dataset!r}: expected "
            f"a baseline of {options.dataset!r} (or --dataset {base['dataset']})."
        )
    outcome = compare(
        base, plan_records(options, results or run_dir, run=results is None), tolerance=tolerance, strict=strict
    )
    click.echo(outcome.markdown())
    if outcome.failed:
        raise SystemExit(1)


@click.command(name="baseline")
@_gate_flags
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write it (default reports/baselines/<dataset>-<preset>.json).",
)
def write_baseline_command(dataset, preset, seed, device, results, run_dir, progress, out) -> None:
    """Write a new baseline on purpose: run the preset (or read --results) and store every cell's rate."""
    from bench.matrix.gate_run import plan_records
    from bench.results.gate import default_baseline_path, make_baseline, write_baseline

    options = _gate_options(dataset, preset, seed, device, progress)
    baseline = make_baseline(plan_records(options, results or run_dir, run=results is None), options.dataset, preset)
    path = out or default_baseline_path(options.dataset, preset)
    write_baseline(path, baseline)
    click.echo(f"wrote {path}: {len(baseline['cells'])} cells, {len(baseline['errors'])} errored")
