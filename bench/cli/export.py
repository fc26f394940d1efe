"""`bench export`: a results store as one CSV, Parquet or JSON table (the columns of ``bench.results.frame``).

The store is only read (``bench.results.store.read_records``); the output is written to a temporary file beside
the target and renamed over it, so a reader never sees half a file and a failed export leaves the old one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import pandas as pd

from bench.cli.common import BenchCommand
from bench.errors import ConfigError
from bench.paths import results_dir
from bench.results.frame import results_frame

FORMATS = ("csv", "parquet", "json")
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json"}
STDOUT = "-"

EPILOG_EXPORT = """
\b
Examples:
  bench export --out results.csv                     # BENCH_HOME/results, every dataset
  bench export --results reports/mnist/store --out mnist.parquet
  bench export --results runs/today/results.sqlite --dataset fashion_mnist --format json --out -
  bench export --results reports/mnist/store --out - | head

\b
One row per stored cell. Columns: the cell (cell_hash, name, dataset, model, model_key, setting,
source, attack, param, value, targeted, n_samples, seed), then every attack parameter by name
(eps, eps_step, max_iter, c, ...; empty where the cell's attack has no such parameter; text for
those that take a word, as L-BFGS's solver), then the measurements (status, metric, rate, ci_low,
ci_high, n, hits, clean_accuracy, norms, seconds, passes, error) and the provenance (device,
commit_id, created). JSON is a list of objects, one per row, null where a value is missing. The
store is never written to.
"""


@click.command(cls=BenchCommand, epilog=EPILOG_EXPORT)
@click.option(
    "--results",
    type=click.Path(path_type=Path),
    default=None,
    help="Results folder (holding results.sqlite) or the .sqlite file; default BENCH_HOME/results.",
)
@click.option("--dataset", default=None, help="Only this dataset's cells (mnist, fashion_mnist, cifar10).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS, case_sensitive=False),
    default=None,
    help="Output format; default from the suffix of --out (.csv, .parquet or .pq, .json), csv for stdout.",
)
@click.option("--out", required=True, help="File to write, or - for stdout (csv and json only).")
def export(results: Path | None, dataset: str | None, fmt: str | None, out: str) -> None:
    """Export a results store as one table: a row per cell, a column per attack parameter."""
    fmt = _format(fmt, out)
    frame = results_frame(results_dir(results), dataset)
    summary = f"{len(frame)} rows x {len(frame.columns)} columns ({fmt})"
    if out == STDOUT:
        click.echo(_text(frame, fmt), nl=False)
        click.echo(f"wrote {summary} to stdout", err=True)  # stdout holds the table
        return
    path = Path(out)
    write_atomic(frame, fmt, path)
    click.echo(f"wrote {summary} to {path}")


def _format(fmt: str | None, out: str) -> str:
    """The format asked for, else the one the output's suffix names; refused where it cannot be written."""
    if fmt is None:
        if out == STDOUT:
            return "csv"
        suffix = Path(out).suffix.lower()
        if suffix not in SUFFIXES:
            raise ConfigError(
                f"--out {out}: cannot tell the format from the suffix {suffix or '(none)'!r}; "
                f"give --format {'|'.join(FORMATS)} or end the name in {', '.join(SUFFIXES)}."
            )
        return SUFFIXES[suffix]
    fmt = fmt.lower()
    if fmt == "parquet" and out == STDOUT:
        raise ConfigError("--format parquet writes a binary file; give --out a file name, not - (stdout).")
    return fmt


def _text(frame: pd.DataFrame, fmt: str) -> str:
    if fmt == "csv":
        return frame.to_csv(index=False)
    # Python's own floats (pandas' to_json rounds to 10 digits); missing values as null
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    return json.dumps(rows, indent=1, allow_nan=False) + "\n"


def write_atomic(frame: pd.DataFrame, fmt: str, path: Path) -> None:
    """Write ``frame`` as ``fmt`` to a temporary file in ``path``'s folder, then rename it over ``path``."""
    if path.is_dir():
        raise ConfigError(f"--out {path} is a folder; expected a file name.")
    if not path.parent.is_dir():
        raise ConfigError(f"--out {path}: the folder {path.parent} does not exist; create it first.")
    # created by the writer below, so that it gets the usual permissions (mkstemp's are owner-only)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if fmt == "parquet":
            _write_parquet(frame, temporary)
        else:
            temporary.write_text(_text(frame, fmt))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # gone already when the rename happened


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    try:
        frame.to_parquet(path, index=False)
    except ImportError as exc:  # pandas needs pyarrow (a dependency of bench) for Parquet
        raise ConfigError(f"--format parquet needs pyarrow: pip install pyarrow ({exc}).") from exc
