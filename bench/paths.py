"""Where the harness keeps its files: BENCH_HOME, else ~/.cache/bench."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "BENCH_HOME"


def bench_home() -> Path:
    """The folder for the model store, staged datasets and results (created on first use)."""
    home = Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "bench")
    home.mkdir(parents=True, exist_ok=True)
    return home


def results_dir(out: str | Path | None = None) -> Path:
    """The results folder (SQLite store and adversarial cache): ``out`` when given, else BENCH_HOME/results."""
    return Path(out) if out is not None else bench_home() / "results"
