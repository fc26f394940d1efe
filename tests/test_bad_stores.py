"""Bad stored inputs end in one line naming the file and what was expected, never a traceback: results stores,
baselines, a model's meta.json and weights; a folder swap killed half-way recovers; the worst case's clean accuracy
is that of its own images."""

from __future__ import annotations

import json
import os
import sqlite3

import numpy as np
import pytest
import torch

from bench.errors import StoreError
from bench.results.store import Record, ResultsStore
from tests.test_bad_inputs import invoke, no_work, one_line  # noqa: F401 (no_work is a fixture)

CELL = "mnist/whitebox_untargeted/fgsm[eps=0.1]/O:SOFTMAX:CE"


def _record(name: str = CELL, n: int = 10, **more) -> Record:
    fields = dict(cell_hash="h" + name, name=name, dataset="mnist", model="O:SOFTMAX:CE", model_key="k")
    fields |= dict(setting="whitebox_untargeted", source=None, attack="fgsm", param="eps", value=0.1, config={})
    fields |= dict(rate=0.5, n=n, hits=n // 2, ci_low=0.2, ci_high=0.8, clean_accuracy=0.9)
    return Record(**(fields | more))


def _store(folder):
    folder.mkdir(parents=True, exist_ok=True)
    ResultsStore(folder / "results.sqlite").put(_record())
    return folder / "results.sqlite"


def _sql(statement):
    def spoil(file):
        with sqlite3.connect(file) as db:
            db.execute(statement)

    return spoil


def _truncate(file):
    file.write_bytes(file.read_bytes()[:2000])
    for extra in file.parent.glob("results.sqlite-*"):
        extra.unlink()


def _directory(file):
    file.unlink()
    file.mkdir()


STORES = [
    # (what is wrong, how the store is spoiled, the message expected from the write path, from the read path)
    ("truncated", _truncate, "cannot be used: database disk image is malformed", "is malformed"),
    ("random bytes", lambda f: f.write_bytes(os.urandom(4096)), "is not an SQLite file", "not a database"),
    ("a directory", _directory, "is a folder; expected an SQLite file", "holds no results.sqlite"),
    (
        "another schema",
        _sql("UPDATE meta SET value = '7' WHERE key = 'schema_version'"),
        "has schema version 7; this bench writes version 1",
        "has schema version 7; this bench reads version 1",
    ),
    ("malformed config", _sql("UPDATE results SET config = '{no'"), "has config = '{no'; expected a JSON", "JSON"),
    ("a word for a rate", _sql("UPDATE results SET rate = 'abc'"), "has rate = 'abc'; expected a number in", "[0, 1]"),
    ("a rate above 1", _sql("UPDATE results SET rate = 1.7"), "has rate = 1.7; expected a number in [0, 1]", "1.7"),
    ("hits above n", _sql("UPDATE results SET hits = 40"), "has hits = 40 above n = 10", "above n"),
]


@pytest.mark.parametrize(("spoil", "write", "read"), [s[1:] for s in STORES], ids=[s[0] for s in STORES])
def test_a_bad_results_store_is_refused_in_one_line(tmp_path, no_work, spoil, write, read):  # noqa: F811
    folder = tmp_path / "res"
    spoil(_store(folder))
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(StoreError, match="results.sqlite") as written:
        ResultsStore(folder / "results.sqlite").records()
    assert write in str(written.value)
    report = one_line(invoke("report", "--dataset", "mnist", "--out", str(folder), "--reports-dir", str(tmp_path)))
    assert read in report and "res" in report
    assert not (tmp_path / "mnist").exists()  # nothing half-written
    matrix = ["matrix", "--dataset", "mnist", "--models", "O:SOFTMAX:CE", "--attacks", "fgsm", "--out", str(folder)]
    assert "res" in one_line(invoke(*matrix))
    assert sorted(p.name for p in folder.iterdir() if "-wal" not in p.name and "-shm" not in p.name) == [
        b for b in before if "-wal" not in b and "-shm" not in b
    ]


def test_a_report_of_an_empty_store_is_refused(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    ResultsStore(folder / "results.sqlite")
    line = one_line(invoke("report", "--dataset", "mnist", "--out", str(folder), "--reports-dir", str(tmp_path)))
    assert "holds no cells of dataset 'mnist' (it holds: none)" in line
    assert not (tmp_path / "mnist").exists()
    missing = one_line(invoke("report", "--dataset", "mnist", "--out", str(tmp_path / "nowhere")))
    assert "nowhere does not exist" in missing and not (tmp_path / "nowhere").exists()


def _baseline(tmp_path, dataset="mnist", **cell):
    entry = {"cell_hash": "abc", "metric": "accuracy", "rate": 0.5, "n": 10, "hits": 5, "ci_low": 0.2, "ci_high": 0.8}
    data = {"format": "bench-baseline", "version": 1, "dataset": dataset, "preset": "quick", "seed": 0}
    data |= {"commit": "x", "versions": {}, "created": "now", "cells": {CELL: entry | cell}, "errors": {}}
    path = tmp_path / "base.json"
    path.write_text(json.dumps(data))
    return path


BASELINES = [
    ({"rate": 1.7}, "rate = 1.7; expected a rate in [0, 1]"),
    ({"hits": 11}, "hits = 11; expected a whole number in [0, n = 10]"),
    ({"n": -3}, "n = -3; expected a whole number of images >= 1"),
    ({"n": 10.5}, "n = 10.5; expected a whole number"),
    ({"ci_low": 0.6}, "rate 0.5 outside its interval [0.6, 0.8]"),
]


@pytest.mark.parametrize(("cell", "expected"), BASELINES, ids=[str(b[0]) for b in BASELINES])
def test_an_impossible_baseline_is_refused_before_any_work(tmp_path, no_work, cell, expected):  # noqa: F811
    line = one_line(invoke("check", "--dataset", "mnist", "--baseline", str(_baseline(tmp_path, **cell))))
    assert expected in line and "base.json" in line


def test_a_baseline_of_another_dataset_is_named_not_reported_missing(tmp_path, no_work):  # noqa: F811
    path = _baseline(tmp_path, dataset="fashion_mnist")
    line = one_line(invoke("check", "--dataset", "mnist", "--baseline", str(path), "--results", str(tmp_path)))
    assert "is of dataset 'fashion_mnist'; this check is of 'mnist'" in line


def test_check_results_on_a_missing_folder_creates_nothing(tmp_path, no_work):  # noqa: F811
    base = _baseline(tmp_path)
    line = one_line(invoke("check", "--dataset", "mnist", "--baseline", str(base), "--results", str(tmp_path / "no")))
    assert "does not exist" in line and not (tmp_path / "no").exists()


def _stored_model(spoil_meta=None, spoil_weights=None):
    """A model store entry for `bench train --dataset mnist --model ce` (its defaults), written by hand."""
    from safetensors.torch import save_file

    from models.network import build_network
    from models.spec import TrainConfig, make_spec
    from models.store import FORMAT_VERSION, META, WEIGHTS, ModelStore

    spec = make_spec("mnist", "O:SOFTMAX:CE", "cnn", TrainConfig())
    folder = ModelStore().path(spec)
    folder.mkdir(parents=True, exist_ok=True)
    state = build_network(spec, (1, 28, 28), 10, placeholder_codebook=True).state_dict()
    state = {k: v.clone().contiguous() for k, v in (spoil_weights or (lambda s: s))(state).items()}
    save_file(state, folder / WEIGHTS)
    meta = {"format": FORMAT_VERSION, "key": spec.key(), "name": spec.name, "spec": spec.to_dict()}
    meta |= {"input_shape": [1, 28, 28], "n_classes": 10, "clean_accuracy": 0.98, "n_test": 10000, "train_seconds": 1}
    meta |= {"device": "cpu", "machine": {"processor": "x", "torch_threads": 1}, "commit": "c", "created": "now"}
    meta |= {"versions": {"torch": "2", "adversarial-robustness-toolbox": "1"}, "history": [], "curve": []}
    (folder / META).write_text(json.dumps((spoil_meta or (lambda m: m))(meta)))
    return folder


def _nan_weights(state):
    first = next(iter(state))
    return {**state, first: torch.full_like(state[first], float("nan"))}


METAS = [
    ("no input_shape", lambda m: {k: v for k, v in m.items() if k != "input_shape"}, None, "has no 'input_shape'"),
    ("a word for accuracy", lambda m: m | {"clean_accuracy": "high"}, None, "clean_accuracy = 'high'; expected"),
    ("a JSON list", lambda m: [m], None, "holds a JSON list; expected an object"),
    ("NaN weights", None, _nan_weights, "holds NaN or infinite weights"),
]


@pytest.mark.parametrize(("meta", "weights", "expected"), [m[1:] for m in METAS], ids=[m[0] for m in METAS])
def test_a_bad_stored_model_is_refused_in_one_line(no_work, caplog, meta, weights, expected):  # noqa: F811
    import shutil

    folder = _stored_model(meta, weights)
    try:
        line = one_line(invoke("train", "--dataset", "mnist", "--model", "ce", "--no-progress"))
        assert expected in line and folder.name in line
        listing = invoke("models")
        assert listing.exit_code == 0 and "Traceback" not in listing.output
        if meta is not None:  # a listing skips the entry, warning with the file's name
            assert any(expected in r.getMessage() and folder.name in r.getMessage() for r in caplog.records)
    finally:
        shutil.rmtree(folder)


def test_a_swap_killed_half_way_recovers(tmp_path):
    from models.checkpoint import replace_folder

    final, old = tmp_path / "model", tmp_path / ".model.old"
    for folder in (final, old):  # killed after the new folder was renamed in, before the old one was removed
        folder.mkdir()
        (folder / "w").write_text(folder.name)
    replace_folder(final, lambda tmp: (tmp / "w").write_text("new"))
    assert (final / "w").read_text() == "new" and not old.exists()
    os.replace(final, old)  # killed between the two renames: only the old folder is whole
    replace_folder(final, lambda tmp: (tmp / "w").write_text("newer"))
    assert (final / "w").read_text() == "newer" and not old.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_model_left_as_old_by_a_kill_is_found_again(no_work):  # noqa: F811
    import shutil

    from models.spec import TrainConfig, make_spec
    from models.store import ModelStore

    folder = _stored_model()
    try:
        os.replace(folder, folder.with_name(f".{folder.name}.old"))
        assert ModelStore().has(make_spec("mnist", "O:SOFTMAX:CE", "cnn", TrainConfig())) and folder.is_dir()
    finally:
        shutil.rmtree(folder)


def test_the_worst_case_clean_accuracy_is_that_of_its_own_images():
    from bench.results.worst_case import worst_case_records

    def cell(attack, n, clean):
        hits = np.ones(n, dtype=bool)
        name = f"mnist/whitebox_untargeted/{attack}[eps=0.1]/m"
        return _record(name, n, attack=attack, per_example=np.packbits(hits).tobytes(), clean_accuracy=clean)

    large, small = cell("bim", 100, 0.95), cell("pgd", 50, 0.80)  # bim sorts first; the shared images are pgd's
    (worst,) = worst_case_records([large, small], lambda r: np.arange(r.n))
    assert worst.n == 50 and worst.clean_accuracy == 0.80


def test_the_committed_baselines_pass_their_own_checks():
    """A Wilson bound at a rate of 1.0 is computed as 0.9999999999999999: a real baseline must not be refused."""
    from pathlib import Path

    from bench.results.gate import read_baseline

    paths = sorted((Path(__file__).parent.parent / "reports" / "baselines").glob("*.json"))
    assert paths
    for path in paths:
        baseline = read_baseline(path)
        assert baseline["cells"] and any(c["rate"] in (0.0, 1.0) for c in baseline["cells"].values())


def test_a_stored_model_whose_weights_are_not_the_ones_its_meta_describes_is_refused_before_any_attack(tmp_path):
    import shutil

    from bench.matrix.plan import MatrixOptions
    from bench.matrix.workbench import Workbench
    from models.spec import TrainConfig, make_spec

    folder = _stored_model()  # untrained weights (about 0.1 correct) beside a meta.json that says 0.98
    spec = make_spec("mnist", "O:SOFTMAX:CE", "cnn", TrainConfig())
    try:
        bench = Workbench(MatrixOptions(dataset="mnist", progress=False), {"O:SOFTMAX:CE": spec}, tmp_path)
        with pytest.raises(StoreError, match=r"of 1000 test images correctly .* but its meta.json says 0.9800"):
            bench.estimator(spec)
    finally:
        shutil.rmtree(folder)
