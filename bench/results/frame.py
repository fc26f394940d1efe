"""The results store as one pandas DataFrame: the public, read-only view of a run's numbers.

One row per stored cell, sorted by name then hash, with every attack parameter in a column of its own so
that cells can be filtered and compared by configuration (``frame[frame.max_iter == 100]``). Columns, in
this order:

1. identity: ``IDENTITY`` (``cell_hash`` is the store's key; ``base_model`` and ``training_seed`` the model's
   label and training seed read from its name, ``models.seeds.split_seeded_name``: ``O:SOFTMAX:CE@s1`` is
   ``O:SOFTMAX:CE`` and 1, a name without a seed has a missing ``training_seed``; ``param``/``value`` the cell's
   swept parameter, ``targeted``, ``n_samples`` and ``seed``, the seed of its images, from its configuration);
2. the attack parameters, sorted by name: every key of any cell's ``config["params"]``, NaN in the rows of
   cells whose attack lacks it (a parameter that takes a word, L-BFGS's ``solver``, is a string column, missing
   where absent);
3. measurements: ``MEASUREMENTS`` (rate is accuracy or success rate as ``metric`` says; norms, times, passes);
4. provenance: ``PROVENANCE``.

Every stored row is named by the hash of its configuration (``bench.results.identity``), and three shapes of it
meet here. Attack cells keep their whole configuration (``bench.matrix.plan.Cell.config``). Gradient-health cells
(``bench.results.diagnostics``) keep dataset, model, setting, the check as their attack, ``n_samples``, seed and a
revision: no attack parameter. Worst-case cells (``bench.results.worst_case``) keep their members' hashes and
names: their one parameter is the eps they share, taken from ``param``/``value``, and they have no ``n_samples``.
Where a configuration does not say whether the cell is targeted, ``targeted`` is whether its metric is a success
rate.
Per-example outcomes, the configuration as JSON and the package versions are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bench.results.store import Record, ResultsStore, read_records
from models.seeds import split_seeded_name

IDENTITY = (
    "cell_hash",
    "name",
    "dataset",
    "model",
    "base_model",
    "training_seed",
    "model_key",
    "setting",
    "source",
    "attack",
    "param",
    "value",
    "targeted",
    "n_samples",
    "seed",
)
MEASUREMENTS = (
    "status",
    "metric",
    "rate",
    "ci_low",
    "ci_high",
    "n",
    "hits",
    "clean_accuracy",
    "l2_mean",
    "l2_median",
    "linf_mean",
    "linf_median",
    "seconds",
    "craft_seconds",
    "craft_reused",
    "examples_per_second",
    "forward_passes",
    "backward_passes",
    "pass_seconds",
    "best_pass_seconds",
    "error",
)
PROVENANCE = ("device", "commit_id", "created")
FIXED = IDENTITY + MEASUREMENTS + PROVENANCE
# nullable dtypes, the same under pandas 2 and 3 (text) and with a missing count still a whole number
_TEXT = ("cell_hash", "name", "dataset", "model", "base_model", "model_key", "setting", "source", "attack", "param")
_TEXT += ("status", "metric", "error", "device", "commit_id", "created")
_INTEGERS = ("n_samples", "seed", "training_seed", "n", "hits", "forward_passes", "backward_passes")
_BOOLEANS = ("targeted", "craft_reused")
_FLOATS = ("value", "rate", "ci_low", "ci_high", "clean_accuracy", "l2_mean", "l2_median", "linf_mean")
_FLOATS += ("linf_median", "seconds", "craft_seconds", "examples_per_second", "pass_seconds")
_FLOATS += ("best_pass_seconds",)


def results_frame(source: ResultsStore | str | Path, dataset: str | None = None) -> pd.DataFrame:
    """Every cell of a results store (a ResultsStore, a results folder or its .sqlite file), of ``dataset`` if
    given; read without writing anything. A source that is not a results store raises StoreError."""
    path = source.path if isinstance(source, ResultsStore) else Path(source)
    where: dict[str, Any] = {}
    if dataset is not None:
        from bench.data.datasets import DATASETS  # imports torch: only when a dataset is named

        where["dataset"] = DATASETS.canonical(dataset)
    return records_frame(read_records(path, **where))


def records_frame(records: list[Record]) -> pd.DataFrame:
    """The frame of ``records`` (columns as the module docstring lists them), sorted by name then hash."""
    records = sorted(records, key=lambda r: (r.name, r.cell_hash))
    every = [_params(r) for r in records]
    params = sorted({k for p in every for k in p})
    words = {k for p in every for k, v in p.items() if isinstance(v, str)}
    rows = [_row(r, p) for r, p in zip(records, every, strict=True)]
    frame = pd.DataFrame(rows, columns=[*IDENTITY, *params, *MEASUREMENTS, *PROVENANCE])
    types = {c: "string" for c in _TEXT} | {c: "Int64" for c in _INTEGERS} | {c: "boolean" for c in _BOOLEANS}
    types |= {c: "float64" for c in _FLOATS} | {c: "string" if c in words else "float64" for c in params}
    return frame.astype(types)


def _params(record: Record) -> dict[str, float | str]:
    """The cell's attack parameters; a worst-case cell's is the eps its components share. A parameter named like
    a column of the frame (a plugin attack's ``seed``, say) is prefixed with ``param_`` instead of overwriting it."""
    params = dict(record.config.get("params", {}))
    if record.param is not None and record.param not in params:
        params[record.param] = record.value
    return {f"param_{k}" if k in FIXED else k: v for k, v in params.items()}


def _row(record: Record, params: dict[str, float | str]) -> dict[str, Any]:
    row = {c: getattr(record, c) for c in FIXED if hasattr(record, c)}
    config = record.config
    row["targeted"] = config.get("targeted", record.metric == "success_rate")
    row["n_samples"] = config.get("n_samples")
    row["base_model"], row["training_seed"] = split_seeded_name(record.model)
    return row | params
