"""One identity scheme for every kind of stored row: its cell hash is the digest of its stored configuration less
the presentation keys (bench.results.identity), and stores that older benches wrote (``dg-`` gradient-health and
``wc-`` worst-case hashes) keep working: their gradient-health rows are migrated, not recomputed."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bench.cli import main
from bench.matrix.plan import MatrixOptions, make_plan
from bench.matrix.runner import MatrixRunner
from bench.results import diagnostics
from bench.results.identity import PRESENTATION, diagnostic_config, digest, identity, row_hash, worst_case_config
from bench.results.store import Record, ResultsStore, legacy_diagnostic_hash, read_records
from bench.results.worst_case import store_worst_cases, worst_case_records
from models.store import ModelStore
from tests.conftest import tiny_preset
from tests.test_committed_keys import STORES

MNIST = STORES[0][2] / "results.sqlite"


def _attack(attack: str, bits: list[int], eps: float = 0.1) -> Record:
    hits = np.array(bits, dtype=bool)
    config = {"dataset": "d", "model": "m", "attack": attack, "params": {"eps": eps}, "tables": ["t"]}
    return Record(
        cell_hash=row_hash(config),
        name=f"d/whitebox_untargeted/{attack}[eps={eps}]/m",
        dataset="d",
        model="m",
        model_key="key-m",
        setting="whitebox_untargeted",
        source=None,
        attack=attack,
        param="eps",
        value=eps,
        config=config,
        rate=float(hits.mean()),
        n=len(bits),
        hits=int(hits.sum()),
        per_example=np.packbits(hits).tobytes(),
        image_indices=np.arange(len(bits), dtype="<i4").tobytes(),
        seed=0,
    )


def _health(subject: diagnostics.Subject) -> list[Record]:
    shares = {
        check: torch.tensor([i % (k + 2) == 0 for i in range(subject.n)]) for k, check in enumerate(diagnostics.CHECKS)
    }
    return diagnostics.health_records(subject, shares, np.arange(subject.n), 0.5, {"created": "2020-01-01T00:00:00"})


def test_a_gradient_health_row_is_named_by_its_stored_config():
    subject = diagnostics.Subject("mnist", "m", "key-m", 20, 3)
    records = _health(subject)
    assert [r.attack for r in records] == list(diagnostics.CHECKS)
    for r in records:
        config = diagnostic_config("mnist", "m", "key-m", r.attack, 20, 3, diagnostics.REVISION)
        assert identity(r.config) == config and r.cell_hash == digest(config) == row_hash(r.config)
        assert r.cell_hash != legacy_diagnostic_hash(r.attack, "key-m", 20, 3, diagnostics.REVISION)
        assert not r.cell_hash.startswith("dg-") and r.config["tables"] == []
    assert subject.hashes() == {r.attack: r.cell_hash for r in records}
    # every part of the identity names a different row; a model relabelled is another row too
    others = [("mnist", "m", "key-m", 21, 3), ("mnist", "m", "key-m", 20, 4), ("mnist", "m", "key-2", 20, 3)]
    others += [("fashion_mnist", "m", "key-m", 20, 3), ("mnist", "m2", "key-m", 20, 3)]
    hashes = {h for o in others for h in diagnostics.Subject(*o).hashes().values()}
    assert len(hashes) == 3 * len(others) and not hashes & set(subject.hashes().values())


def test_a_worst_case_row_is_named_by_its_stored_config():
    a, b = _attack("fgsm", [1, 1, 0, 1]), _attack("pgd", [1, 0, 1, 1])
    (worst,) = worst_case_records([b, a])
    expected = worst_case_config("d", "m", "key-m", "whitebox_untargeted", 0.1, [a.cell_hash, b.cell_hash])
    assert identity(worst.config) == expected and worst.cell_hash == digest(expected) == row_hash(worst.config)
    assert expected["members"] == sorted([a.cell_hash, b.cell_hash]) and not worst.cell_hash.startswith("wc-")
    assert worst.config["components"] == [a.name, b.name] and set(worst.config["robust_alone"]) == {a.name, b.name}
    # another member is another worst case; the presentation keys name nothing
    (other,) = worst_case_records([a, _attack("mim", [1, 0, 1, 1])])
    assert other.cell_hash != worst.cell_hash
    assert row_hash({**expected, **dict.fromkeys(PRESENTATION, "x")}) == worst.cell_hash


def test_committed_attack_cells_are_named_by_their_stored_config():
    """The matrix cells of a committed store: the same scheme, from bench.matrix.plan.Cell.config."""
    cells = [r for r in read_records(MNIST) if r.setting != "diagnostics" and r.attack != "worst_case"]
    assert len(cells) > 300 and all(r.cell_hash == row_hash(r.config) for r in cells)


def _legacy(record: Record, revision: int = diagnostics.REVISION) -> Record:
    """``record`` as an older bench stored it: a dg- hash and the config it kept."""
    config = {"check": record.attack, "n_samples": record.config["n_samples"], "revision": revision, "tables": []}
    old = legacy_diagnostic_hash(record.attack, record.model_key, config["n_samples"], record.seed, revision)
    return dataclasses.replace(record, cell_hash=old, config=config)


def _rows(path: Path) -> dict[str, tuple]:
    with sqlite3.connect(path) as db:
        return {h: (name, created) for h, name, created in db.execute("SELECT cell_hash, name, created FROM results")}


def test_an_old_store_is_migrated_and_a_run_does_not_recompute_its_gradient_health(tmp_path):
    preset = tiny_preset(tmp_path, ["O:SOFTMAX:CE"])
    options = MatrixOptions(dataset="mnist", preset=str(preset), settings=("diagnostics",), progress=False)
    plan = make_plan(options)
    ((label, spec),) = plan.specs.items()
    subject = diagnostics.Subject("mnist", label, spec.key(), plan.preset.diagnostic_samples, plan.preset.seed)
    path = tmp_path / "out" / "results.sqlite"
    store = ResultsStore(path)
    for record in _health(subject):
        store.put(_legacy(record))
    store.put(_legacy(_health(diagnostics.Subject("mnist", "gone", "key-g", 5, 0))[0], revision=0))  # old revision
    foreign = _legacy(_health(diagnostics.Subject("mnist", "x", "key-x", 5, 0))[0])
    store.put(dataclasses.replace(foreign, cell_hash="dg-not-the-legacy-formula"))
    before = _rows(path)
    assert set(subject.hashes().values()).isdisjoint(store.finished())  # as the old scheme left it

    summary = MatrixRunner(options, store, path.parent, ModelStore(tmp_path / "models")).run(plan)

    assert summary.diagnostics == 0 and summary.done == 0  # nothing computed, no model trained
    after = _rows(path)
    assert sorted(after.values()) == sorted(before.values())  # the same rows, names and times: renamed only
    assert set(subject.hashes().values()) <= set(after) and "dg-not-the-legacy-formula" in after
    migrated = [r for r in store.records() if r.cell_hash != "dg-not-the-legacy-formula"]
    assert len(migrated) == 4 and all(r.cell_hash == row_hash(r.config) for r in migrated)
    assert {r.config["revision"] for r in migrated} == {0, diagnostics.REVISION}
    assert store.migrate_legacy_hashes() == 0  # once is enough


def test_a_legacy_row_gives_way_to_its_new_one(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite")
    (new, *_) = _health(diagnostics.Subject("mnist", "m", "key-m", 8, 0))
    store.put(new)
    store.put(_legacy(new))
    assert store.migrate_legacy_hashes() == 1
    (kept,) = store.records()
    assert kept.cell_hash == new.cell_hash and kept.config == new.config


def _as_an_older_bench_left_it(committed: Path, copy: Path) -> int:
    """A copy of a committed store (migrated) with its gradient-health rows put back under their dg- hashes and the
    config older benches kept, and its worst-case rows under wc- hashes; returns how many rows were put back."""
    shutil.copy(committed, copy)
    records = ResultsStore(copy).records()
    with sqlite3.connect(copy) as db:
        for record in (r for r in records if r.setting == diagnostics.SETTING):
            old = _legacy(record, record.config["revision"])
            sql = "UPDATE results SET cell_hash = ?, config = ? WHERE cell_hash = ?"
            db.execute(sql, (old.cell_hash, json.dumps(old.config, sort_keys=True), record.cell_hash))
        for record in (r for r in records if r.attack == "worst_case"):
            db.execute(
                "UPDATE results SET cell_hash = ? WHERE cell_hash = ?", ("wc-" + record.cell_hash, record.cell_hash)
            )
    return sum(r.setting == diagnostics.SETTING for r in records)


@pytest.mark.parametrize(("dataset", "preset", "store"), STORES, ids=[f"{d}-{Path(p).stem}" for d, p, _ in STORES])
def test_committed_gradient_health_migrates_to_what_a_run_asks_for(tmp_path, dataset, preset, store):
    """Each committed store is in today's scheme; put back as an older bench left it, its dg- rows become exactly
    the rows today's plan asks for, so a run on it computes no gradient health again."""
    shutil.copy(store / "results.sqlite", tmp_path / "as-committed.sqlite")
    assert ResultsStore(tmp_path / "as-committed.sqlite").migrate_legacy_hashes() == 0  # already migrated
    put_back = _as_an_older_bench_left_it(store / "results.sqlite", tmp_path / "results.sqlite")
    copy = ResultsStore(tmp_path / "results.sqlite")
    count = len(copy.records())
    assert put_back > 0 and copy.migrate_legacy_hashes() == put_back and len(copy.records()) == count
    options = MatrixOptions(dataset=dataset, preset=preset, settings=("diagnostics",), progress=False)
    plan = make_plan(options)
    seed, n = plan.preset.seed, plan.preset.diagnostic_samples
    wanted = {
        h
        for label, spec in plan.specs.items()
        for h in diagnostics.Subject(dataset, label, spec.key(), n, seed).hashes().values()
    }
    stored = {r.cell_hash for r in copy.records() if r.setting == "diagnostics"}
    assert wanted == stored and wanted <= copy.finished()
    if dataset == "mnist" and preset == "paper":  # the runner itself, once (safe: nothing is left to compute)
        summary = MatrixRunner(options, copy, tmp_path, ModelStore(tmp_path / "models")).run(plan)
        assert summary.diagnostics == 0 and len(copy.records()) == count


def _report(folder: Path, reports: Path) -> tuple[str, list[dict]]:
    done = CliRunner().invoke(
        main, ["report", "--dataset", "mnist", "--out", str(folder), "--reports-dir", str(reports)]
    )
    assert done.exit_code == 0, done.output
    readme = (reports / "mnist" / "README.md").read_text().replace(str(folder), "STORE")
    with open(reports / "mnist" / "results.csv", newline="") as f:
        rows = [{k: v for k, v in row.items() if k != "cell_hash"} for row in csv.DictReader(f)]
    return readme, rows


def test_the_committed_mnist_report_keeps_its_numbers_after_migration(tmp_path):
    """What a run does to an old store (gradient-health hashes migrated, worst cases recomputed) changes no
    number of its report: only the hashes."""
    old, new = tmp_path / "old", tmp_path / "new"
    for folder in (old, new):
        folder.mkdir()
        _as_an_older_bench_left_it(MNIST, folder / "results.sqlite")
    store = ResultsStore(new / "results.sqlite")
    assert store.migrate_legacy_hashes() == 15
    before = {r.name: r for r in store.records(attack="worst_case")}
    after = {r.name: r for r in store_worst_cases(store, "mnist")}
    assert set(before) == set(after) and all(r.cell_hash.startswith("wc-") for r in before.values())
    for name, r in after.items():
        assert (r.rate, r.n, r.hits, r.config["robust_alone"]) == (
            before[name].rate,
            before[name].n,
            before[name].hits,
            before[name].config["robust_alone"],
        )
        assert r.cell_hash == row_hash(r.config)
    assert _report(old, tmp_path / "old-reports") == _report(new, tmp_path / "new-reports")
