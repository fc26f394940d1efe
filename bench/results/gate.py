"""The regression gate: compare a run's robustness numbers with a stored baseline (issue 5).

A baseline is a small versioned JSON file (see docs/baseline-format.md) holding each finished cell's
rate, sample size and Wilson 95% interval. A cell drifts when the baseline's and today's intervals do
not overlap: the two runs are independent samples, so a fixed threshold on the rates would either
flag ordinary sampling noise at small n or miss real changes at large n. A fixed ``tolerance`` may be
added on top of the intervals for numbers known to wobble (e.g. non-deterministic GPU kernels).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.results.store import Record

BASELINE_FORMAT = "bench-baseline"
BASELINE_VERSION = 1
BASELINE_KEYS = ("format", "version", "dataset", "preset", "seed", "commit", "versions", "created", "cells", "errors")
CELL_KEYS = ("cell_hash", "metric", "rate", "n", "hits", "ci_low", "ci_high")

OK = "ok"
DRIFTED = "drifted"
MISSING = "missing now"
NEW = "new (not in baseline)"
NEW_AFTER_ERROR = "new (errored in baseline)"
CONFIG_CHANGED = "config changed"
ERROR = "error"


def _latest_by_name(records: Iterable[Record], dataset: str) -> dict[str, Record]:
    """One record per cell name: the store is keyed by hash, so a changed config leaves the old row behind."""
    latest: dict[str, Record] = {}
    for r in records:
        if r.dataset != dataset:
            continue
        old = latest.get(r.name)
        if old is None or (r.created or "") >= (old.created or ""):
            latest[r.name] = r
    return latest


def _regenerate(dataset: Any = "DATASET", preset: Any = "PRESET") -> str:
    return f"`bench baseline --dataset {dataset} --preset {preset}`"


def make_baseline(records: Iterable[Record], dataset: str, preset: str) -> dict[str, Any]:
    """The baseline of ``dataset``: its finished cells, and its errored cells listed apart so none passes unseen."""
    latest = _latest_by_name(records, dataset)
    ok = {name: r for name, r in latest.items() if r.status == "ok"}
    if not ok:
        raise ConfigError(
            f"no finished cells of dataset {dataset!r} in the results; run `bench matrix --dataset {dataset}` first."
        )
    seeds = sorted({r.seed for r in latest.values()}, key=str)
    if len(seeds) > 1:
        raise ConfigError(
            f"the results of dataset {dataset!r} mix seeds {seeds}; a baseline is one run, "
            "so build it from a results folder that holds one seed."
        )
    newest = max(latest.values(), key=lambda r: r.created or "")
    commits = sorted({r.commit_id or "unknown" for r in latest.values()})
    return {
        "format": BASELINE_FORMAT,
        "version": BASELINE_VERSION,
        "dataset": dataset,
        "preset": preset,
        "seed": seeds[0],
        "commit": ", ".join(commits),
        "versions": dict(newest.versions),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cells": {
            name: {
                "cell_hash": r.cell_hash,
                "metric": r.metric,
                "rate": r.rate,
                "n": r.n,
                "hits": r.hits,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "probe_hash": probe_hash(r.config),
            }
            for name, r in sorted(ok.items())
        },
        "errors": {
            name: {"cell_hash": r.cell_hash, "error": (r.error or "").split("\n", 1)[0]}
            for name, r in sorted(latest.items())
            if r.status != "ok"
        },
    }


CODE_KEYS = ("model_key", "source_key", "tables", "attack_code")  # what retrained models or edited plugins change


def probe_hash(config: dict[str, Any]) -> str:
    """A hash of what a cell measures, leaving out the store keys and a plugin attack's code hash but keeping how the
    models were configured (``model_probe``: the spec without a plugin's code hash): a model retrained from edited
    code, or an edited plugin attack, is still compared with its baseline, so a weakened one shows as drift, while
    a model trained otherwise (epochs, architecture, codeword length) is a changed configuration."""
    probe = {k: v for k, v in config.items() if k not in CODE_KEYS}
    return hashlib.sha256(json.dumps(probe, sort_keys=True).encode()).hexdigest()[:16]


def default_baseline_path(dataset: str, preset: str) -> Path:
    """Where `bench baseline` writes unless told: reports/baselines/<dataset>-<preset>.json."""
    return Path("reports") / "baselines" / f"{dataset}-{Path(str(preset)).stem}.json"


def write_baseline(path: str | Path, baseline: dict[str, Any]) -> None:
    """Write through a temporary file and a rename, so a crash never leaves half a baseline behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(baseline, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def read_baseline(path: str | Path) -> dict[str, Any]:
    """Read and check a baseline; every problem names the file, what was found and what was expected."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"baseline file {path} does not exist; create it with {_regenerate()}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"baseline {path} is not valid JSON ({exc}); regenerate it with {_regenerate()}.") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"baseline {path} holds a JSON {type(data).__name__}; expected an object with "
            f"format {BASELINE_FORMAT!r}. Regenerate it with {_regenerate()}."
        )
    regen = "regenerate it with " + _regenerate(data.get("dataset", "DATASET"), data.get("preset", "PRESET"))
    if data.get("format") != BASELINE_FORMAT:
        raise ConfigError(
            f"baseline {path} has format {data.get('format')!r}; expected {BASELINE_FORMAT!r}. "
            f"Is it a baseline file? If so, {regen}."
        )
    if "version" in data and (data["version"] != BASELINE_VERSION or isinstance(data["version"], bool)):
        version = data["version"]
        if _is_number(version) and version < BASELINE_VERSION:
            hint = f"it is older than this bench; {regen}"
        else:
            hint = f"it is newer than this bench or unknown; upgrade bench, or {regen}"
        raise ConfigError(
            f"baseline {path} has format version {version!r}; this bench reads version {BASELINE_VERSION}: {hint}."
        )
    missing = [k for k in BASELINE_KEYS if k not in data]
    if missing:
        raise ConfigError(f"baseline {path} lacks the keys {missing}; expected all of {list(BASELINE_KEYS)}; {regen}.")
    if not isinstance(data["cells"], dict) or not isinstance(data["errors"], dict):
        raise ConfigError(f"baseline {path}: 'cells' and 'errors' must be objects keyed by cell name; {regen}.")
    for name, cell in data["cells"].items():
        if not isinstance(cell, dict) or any(k not in cell for k in CELL_KEYS):
            found = sorted(cell) if isinstance(cell, dict) else type(cell).__name__
            raise ConfigError(
                f"baseline {path}: cell {name!r} has {found}; expected the keys {list(CELL_KEYS)}; {regen}."
            )
        bad = [k for k in ("rate", "n", "hits", "ci_low", "ci_high") if not _is_number(cell[k])]
        if bad:
            raise ConfigError(f"baseline {path}: cell {name!r} has non-numeric {bad}; expected numbers; {regen}.")
        problem = _cell_problem(cell)
        if problem:
            raise ConfigError(f"baseline {path}: cell {name!r} has {problem}; {regen}.")
    return data


def _cell_problem(cell: dict[str, Any]) -> str | None:
    """What is impossible about a baseline cell's numbers (a rate above 1, more hits than images), else None: an
    impossible baseline would pass or fail the gate for no reason."""
    n, hits = cell["n"], cell["hits"]
    if not isinstance(n, int) or n < 1:
        return f"n = {n!r}; expected a whole number of images >= 1"
    if not isinstance(hits, int) or not 0 <= hits <= n:
        return f"hits = {hits!r}; expected a whole number in [0, n = {n}]"
    for key in ("rate", "ci_low", "ci_high"):
        if not 0 <= cell[key] <= 1:
            return f"{key} = {cell[key]!r}; expected a rate in [0, 1]"
    slack = 1e-9  # a Wilson bound at 0 or 1 is computed, not exact (0.9999999999999999 for a rate of 1.0)
    if not cell["ci_low"] - slack <= cell["rate"] <= cell["ci_high"] + slack:
        return f"rate {cell['rate']!r} outside its interval [{cell['ci_low']!r}, {cell['ci_high']!r}]; expected inside"
    return None


@dataclass(frozen=True)
class GateRow:
    """One cell's verdict; ``base`` is the baseline's cell entry, ``now`` today's record (either may be None)."""

    name: str
    verdict: str
    base: dict[str, Any] | None = None
    now: Record | None = None
    note: str = ""

    def failed(self, strict: bool = False) -> bool:
        if self.verdict in (NEW, NEW_AFTER_ERROR):
            return strict
        return self.verdict != OK


@dataclass
class GateResult:
    baseline: dict[str, Any]
    rows: list[GateRow]
    tolerance: float = 0.0
    strict: bool = False
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = {}
        for row in self.rows:
            key = NEW if row.verdict == NEW_AFTER_ERROR else row.verdict
            self.counts[key] = self.counts.get(key, 0) + 1

    @property
    def failed(self) -> bool:
        return any(row.failed(self.strict) for row in self.rows)

    def summary(self) -> str:
        c = self.counts
        compared = c.get(OK, 0) + c.get(DRIFTED, 0)
        verdict = "gate FAILED" if self.failed else "gate passed"
        return (
            f"{compared} cells compared, {c.get(DRIFTED, 0)} drifted, {c.get(MISSING, 0)} missing now, "
            f"{c.get(CONFIG_CHANGED, 0)} config changed, {c.get(ERROR, 0)} errored, {c.get(NEW, 0)} new "
            f"(tolerance {self.tolerance:g}{', strict' if self.strict else ''}): {verdict}."
        )

    def markdown(self) -> str:
        """A table of every cell that is not plainly ok, then the one-line summary."""
        b = self.baseline
        lines = [
            f"Baseline: dataset {b['dataset']}, preset {b['preset']}, seed {b['seed']}, "
            f"commit {b['commit']}, created {b['created']}.",
            "",
        ]
        shown = [row for row in self.rows if row.verdict != OK]
        if shown:
            lines += [
                "| cell | baseline | now | difference | baseline interval | now interval | verdict |",
                "|---|---|---|---|---|---|---|",
            ]
            for row in shown:
                base_rate, now_rate = _rate(row.base), _rate(row.now)
                diff = f"{now_rate - base_rate:+.3f}" if base_rate is not None and now_rate is not None else ""
                verdict = f"{row.verdict} ({row.note})" if row.note else row.verdict
                cells = [
                    row.name,
                    _fmt(base_rate),
                    _fmt(now_rate),
                    diff,
                    _interval(row.base),
                    _interval(row.now),
                    verdict,
                ]
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
            lines.append("")
        lines.append(self.summary())
        return "\n".join(lines) + "\n"


def _get(side: dict[str, Any] | Record | None, key: str) -> Any:
    if side is None:
        return None
    return side.get(key) if isinstance(side, dict) else getattr(side, key)


def _rate(side: dict[str, Any] | Record | None) -> float | None:
    return _get(side, "rate")


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


def _interval(side: dict[str, Any] | Record | None) -> str:
    low, high = _get(side, "ci_low"), _get(side, "ci_high")
    return "" if low is None or high is None else f"[{low:.3f}, {high:.3f}]"


def drifted(base: dict[str, Any], now: Record, tolerance: float = 0.0) -> bool:
    """True when the two Wilson intervals, each widened by ``tolerance``, do not overlap; equal rates never drift."""
    if now.rate == base["rate"]:
        return False
    return now.ci_low > base["ci_high"] + tolerance or now.ci_high < base["ci_low"] - tolerance


def compare(
    baseline: dict[str, Any], records: Iterable[Record], tolerance: float = 0.0, strict: bool = False
) -> GateResult:
    """Judge every cell of the baseline's dataset; new cells fail only when ``strict``."""
    if not _is_number(tolerance) or not 0 <= tolerance <= 1:
        raise ConfigError(f"tolerance must be a rate between 0 and 1; got {tolerance!r}.")
    now = _latest_by_name(records, baseline["dataset"])
    cells, errors = baseline["cells"], baseline.get("errors", {})
    rows = []
    for name in sorted(set(cells) | set(errors) | set(now)):
        base, rec = cells.get(name), now.get(name)
        if rec is None:
            note = "errored in baseline" if name in errors else ""
            rows.append(GateRow(name, MISSING, base, None, note))
        elif rec.status != "ok" or rec.rate is None:
            rows.append(GateRow(name, ERROR, base, rec, (rec.error or "").split("\n", 1)[0]))
        elif base is None:
            rows.append(GateRow(name, NEW_AFTER_ERROR if name in errors else NEW, None, rec))
        elif rec.cell_hash != base["cell_hash"] and base.get("probe_hash") != probe_hash(rec.config):
            rows.append(GateRow(name, CONFIG_CHANGED, base, rec, f"hash {base['cell_hash']} -> {rec.cell_hash}"))
        else:
            note = "code changed" if rec.cell_hash != base["cell_hash"] else ""
            rows.append(GateRow(name, DRIFTED if drifted(base, rec, tolerance) else OK, base, rec, note))
    return GateResult(baseline, rows, tolerance, strict)
