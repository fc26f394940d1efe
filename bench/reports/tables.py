"""Markdown tables in the papers' layout: one sub-table per attack, models as rows, swept values as columns.

Each cell reads ``measured ±h (paper)``, h the larger side of the Wilson 95% interval (``CELL_KEY``, said once
per report); a cell the papers did not publish has no parenthesis. The CSV keeps the interval's ends and the
published number. Every table states how many images its cells used.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from tabulate import tabulate

from bench.attacks import ATTACKS
from bench.reports.reference import lookup
from bench.results.metrics import short
from bench.results.store import Record
from models.seeds import kind_label

TABLE_TITLES = {
    "saito2019:3": "saito2019 Table 3: untargeted white-box attacks, accuracy (higher = more robust)",
    "saito2019:5": "saito2019 Table 5: targeted white-box attacks, success rate (lower = more robust)",
    "saito2019:6": "saito2019 Table 6: transfer (black-box) attacks crafted on the source model, accuracy",
    "saito2019:7": "saito2019 Table 7: targeted stock CW-L2 against the tailored codeword CW-L2, success rate",
    "vu2018:III-A": "vu2018 section III-A / Table II evaluation: random-start PGD, k=100, step 0.01, eps 0.3, accuracy",
    "vu2018:II": "vu2018 Table II: PGD adversarial training, random-start PGD k=100, step 0.01, eps 0.3, accuracy",
    "vu2018:III": "vu2018 Table III: transferability between adversarially trained models (source → target), accuracy",
    "baseline": "ART baseline: ART's CarliniL2Method beside ours (same c), accuracy",
}
PARAM_SYMBOL = {"eps": "ε", "c": "c", "max_iter": "m"}


def fmt_rate(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.3f}"


# which models a table is about: vu2018's Tables II and III publish adversarially trained models, its section III-A
# evaluation plain ones; a group tagged with both lists each model under the table it belongs to
ADVERSARIAL_ONLY = {"vu2018:II": True, "vu2018:III": True, "vu2018:III-A": False}
CELL_KEY = (
    "Each cell: measured rate ± the larger side of its Wilson 95% interval (published number, where the papers "
    "have one); `results.csv` has the interval's ends, the published number and Δ = measured − published."
)


def fmt_cell(record: Record | None, paper: float | None) -> str:
    if record is None:
        return "not run"
    if record.status != "ok":
        return "error (see Failures)"
    return short(record) if paper is None else f"{short(record)} ({paper:.3f})"


def records_for_table(
    records: Iterable[Record], table: str, adversarial: set[str] = frozenset(), known: set[str] | None = None
) -> list[Record]:
    """The records tagged with ``table``; for the tables of one kind of training (``ADVERSARIAL_ONLY``), only the
    models trained that way (``adversarial``: the store keys of adversarially trained models, among the ``known``
    keys whose training the report knows). A model of unknown training stays under the first such table it is
    tagged with (the preset's order), so that one cell is never printed as two tables' rows."""
    tagged = [r for r in records if table in r.config.get("tables", [])]
    if table not in ADVERSARIAL_ONLY:
        return tagged
    known = set(known if known is not None else adversarial)
    wanted = ADVERSARIAL_ONLY[table]

    def belongs(r: Record) -> bool:
        if r.model_key in known:
            return (r.model_key in adversarial) == wanted
        return _first_training_table(r) == table

    return [r for r in tagged if belongs(r)]


def _first_training_table(record: Record) -> str | None:
    return next((t for t in record.config.get("tables", []) if t in ADVERSARIAL_ONLY), None)


def render_table(table: str, records: list[Record], arch: str) -> str:
    """One section: a sub-table per attack (per attack and setting for Table 7)."""
    by_attack: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_attack[r.attack].append(r)
    parts = [f"### {TABLE_TITLES.get(table, table)}", ""]
    if table == "saito2019:7":
        parts += [_tailored(records, arch), ""]
        return "\n".join(parts)
    for attack, recs in by_attack.items():
        param = recs[0].param
        values = sorted({r.value for r in recs})
        rows_keys = sorted({(r.source, r.model) for r in recs}, key=lambda k: (k[0] or "", _model_order(k[1])))
        index = {(r.source, r.model, r.value): r for r in recs}
        header = ["model" if not recs[0].source else "source → model"] + [
            f"{PARAM_SYMBOL.get(param, param)}={v:g}" for v in values
        ]
        rows = []
        for source, model in rows_keys:
            label = f"{source} → {model}" if source else model
            cells = []
            for v in values:
                rec = index.get((source, model, v))
                paper = lookup(table, recs[0].setting, recs[0].dataset, model, attack, param, v, source, arch)
                cells.append(fmt_cell(rec, paper))
            rows.append([label, *cells])
        n = sorted({r.n for r in recs if r.n})
        parts += [
            f"**{attack}** ({ATTACKS.get(attack).implementation}); images per cell: {', '.join(map(str, n)) or '—'}",
            "",
            tabulate(rows, headers=header, tablefmt="github"),
            "",
        ]
    return "\n".join(parts)


def _tailored(records: list[Record], arch: str) -> str:
    index = {(r.attack, r.model, r.value): r for r in records}
    columns = sorted({(r.attack, r.value) for r in records})
    models = sorted({r.model for r in records}, key=_model_order)
    header = ["model"] + [f"{a} c={v:g}" for a, v in columns]
    rows = []
    for m in models:
        cells = [
            fmt_cell(
                index.get((a, m, v)), lookup("saito2019:7", "tailored", _dataset(records), m, a, "c", v, arch=arch)
            )
            for a, v in columns
        ]
        rows.append([m, *cells])
    n = sorted({r.n for r in records if r.n})
    return f"images per cell: {', '.join(map(str, n))}\n\n" + tabulate(rows, headers=header, tablefmt="github")


def _dataset(records: list[Record]) -> str:
    return records[0].dataset if records else ""


_ORDER = ["O:SOFTMAX:CE", "O:SOFTMAX:MSE", "R:TANH:MSE", "hinge"]


def _model_order(label: str) -> tuple[int, str]:
    base = kind_label(label)  # the seeds (and recipes) of a model sort together, in the papers' order
    return (_ORDER.index(base) if base in _ORDER else len(_ORDER), label)


def timing_rows(records: Iterable[Record]) -> list[dict[str, Any]]:
    """Per attack family (and its word-valued parameters: L-BFGS's solver), over the cells that crafted (not reused)
    examples: wall time against pass time."""
    groups: dict[tuple[str, tuple[str, ...]], list[Record]] = defaultdict(list)
    for r in records:
        if r.status == "ok" and not r.craft_reused and r.craft_seconds:
            groups[(r.attack, _words(r))].append(r)
    rows = []
    for (attack, words), recs in sorted(groups.items()):
        wall = sum(r.craft_seconds for r in recs)
        passes = sum(r.pass_seconds or 0.0 for r in recs)
        images = sum(r.n for r in recs)
        rows.append(
            {
                "attack": " ".join([attack, *words]),
                "implementation": ATTACKS.get(attack).implementation,
                "cells crafted": len(recs),
                "images": images,
                "wall s": round(wall, 1),
                "forward passes": sum(r.forward_passes for r in recs),
                "backward passes": sum(r.backward_passes for r in recs),
                "pass-equivalent s": round(passes, 1),
                "wall / passes": round(wall / passes, 2) if passes else None,
                "images/s": round(images / wall, 1) if wall else None,
                **_best_batch_columns(recs, wall),
            }
        )
    return rows


def _words(record: Record) -> tuple[str, ...]:
    """The cell's word-valued parameters as "solver=torch": cells crafted by another solver get a row of their own."""
    return tuple(sorted(f"{k}={v}" for k, v in record.config.get("params", {}).items() if isinstance(v, str)))


def _best_batch_columns(recs: list[Record], wall: float) -> dict[str, Any]:
    """The passes priced at the best batch throughput of their model (stores written before that was measured: none)."""
    if any(r.best_pass_seconds is None for r in recs):
        return {}
    best = sum(r.best_pass_seconds for r in recs)
    return {"passes at best batch s": round(best, 1), "wall / best": round(wall / best, 2) if best else None}


def run_prices(records: Iterable[Record], train_seconds: float) -> dict[str, float] | None:
    """The run's crafting wall time against its passes priced at the best batch, and the whole run's ratio with
    training counted at its own wall time (its batches are full). None for stores without best prices."""
    crafted = [r for r in records if r.status == "ok" and not r.craft_reused and r.craft_seconds]
    if not crafted or any(r.best_pass_seconds is None for r in crafted):
        return None
    wall, best = sum(r.craft_seconds for r in crafted), sum(r.best_pass_seconds for r in crafted)
    return {
        "attack_wall": wall,
        "attack_best": best,
        "train": train_seconds,
        "attack_ratio": wall / best,
        "run_ratio": (wall + train_seconds) / (best + train_seconds),
    }
