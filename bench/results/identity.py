"""What names a stored row: a short hash of its configuration (JSON, keys sorted).

Every kind of stored row is named one way: its ``cell_hash`` is ``digest`` of its identity configuration, which is
the dict stored in its ``config`` column less the presentation keys (``PRESENTATION``: where a report shows the
row, what the models were, the names and per-attack counts a worst case keeps for its report). Matrix cells take
theirs from ``bench.matrix.plan.Cell.config``; gradient-health rows from ``diagnostic_config``; worst-case rows,
derived from others, from ``worst_case_config``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# stored beside a row's identity, never hashed: report tables, the gate's model probes, a worst case's report data
PRESENTATION = ("tables", "model_probe", "source_probe", "components", "robust_alone")
DIAGNOSTICS = "diagnostics"  # the setting of gradient-health rows (bench.results.diagnostics)
WORST_CASE = "worst_case"  # the attack of worst-case rows (bench.results.worst_case)


def digest(data: Any) -> str:
    """A short hash of JSON data (a dict's keys sorted): cell hashes, craft keys, group and task keys."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def identity(config: dict[str, Any]) -> dict[str, Any]:
    """A stored configuration less its presentation keys: what its row's hash is the digest of."""
    return {k: v for k, v in config.items() if k not in PRESENTATION}


def row_hash(config: dict[str, Any]) -> str:
    """The ``cell_hash`` of the row whose stored configuration is ``config``."""
    return digest(identity(config))


def diagnostic_config(
    dataset: str, model: str, model_key: str, check: str, n_samples: int, seed: int, revision: int
) -> dict[str, Any]:
    """A gradient-health row's identity: one check of one model on ``n_samples`` images drawn with ``seed``,
    under the checks' definitions of ``revision``."""
    return {
        "dataset": dataset,
        "model": model,
        "model_key": model_key,
        "setting": DIAGNOSTICS,
        "attack": check,
        "n_samples": n_samples,
        "seed": seed,
        "revision": revision,
    }


def worst_case_config(
    dataset: str, model: str, model_key: str, setting: str, eps: float, members: list[str]
) -> dict[str, Any]:
    """A worst-case row's identity: the cells it is derived from (their hashes, sorted) at their shared eps."""
    return {
        "dataset": dataset,
        "model": model,
        "model_key": model_key,
        "setting": setting,
        "attack": WORST_CASE,
        "eps": eps,
        "members": sorted(members),
    }
