"""The regression gate on hand-built records in a real results store: no training, no attacks."""

from __future__ import annotations

import json
import re

import pytest

from bench.errors import ConfigError
from bench.results.gate import (
    BASELINE_VERSION,
    compare,
    make_baseline,
    probe_hash,
    read_baseline,
    write_baseline,
)
from bench.results.metrics import wilson_interval
from bench.results.store import Record, ResultsStore

FGSM = "mnist/untargeted/fgsm[eps=0.1]/O:SOFTMAX:CE"
PGD = "mnist/untargeted/pgd[eps=0.3]/O:SOFTMAX:CE"


def rec(
    name: str, hits: int, n: int = 100, *, dataset: str = "mnist", status: str = "ok", hash_: str = "", **config
) -> Record:
    low, high = wilson_interval(hits, n)
    ok = status == "ok"
    return Record(
        cell_hash=hash_ or f"h-{name}",
        name=name,
        dataset=dataset,
        model="O:SOFTMAX:CE",
        model_key=config.get("model_key", "key"),
        setting="untargeted",
        source=None,
        attack=name.split("/")[2].split("[")[0],
        param="eps",
        value=0.1,
        config={"dataset": dataset, "seed": 0, "model_key": "key", **config},
        status=status,
        metric="accuracy" if ok else None,
        rate=hits / n if ok else None,
        ci_low=low if ok else None,
        ci_high=high if ok else None,
        n=n if ok else None,
        hits=hits if ok else None,
        error=None if ok else "RuntimeError: boom\ntraceback",
        seed=0,
        commit_id="abc123",
        versions={"bench": "0.1.0"},
        created="2024-01-01T00:00:00+00:00",
    )


def stored(tmp_path, *records: Record, name: str = "results.sqlite") -> list[Record]:
    store = ResultsStore(tmp_path / name)
    for r in records:
        store.put(r)
    return store.records()


@pytest.fixture
def baseline(tmp_path) -> dict:
    return make_baseline(stored(tmp_path, rec(FGSM, 10), rec(PGD, 50)), "mnist", "quick")


def test_identical_run_passes(tmp_path, baseline):
    result = compare(baseline, stored(tmp_path, rec(FGSM, 10), rec(PGD, 50), name="now.sqlite"))
    assert not result.failed
    assert [row.verdict for row in result.rows] == ["ok", "ok"]
    assert "2 cells compared, 0 drifted" in result.markdown()
    assert "| cell |" not in result.markdown()  # no table when every cell is ok


@pytest.mark.parametrize(("base", "now"), [((0, 100), (0, 100)), ((100, 100), (100, 100)), ((50, 100), (5000, 10000))])
def test_identical_rates_never_drift(tmp_path, base, now):
    b = make_baseline([rec(FGSM, *base)], "mnist", "quick")
    assert not compare(b, [rec(FGSM, *now)]).failed


def test_large_move_drifts_and_fails(baseline):
    result = compare(baseline, [rec(FGSM, 40), rec(PGD, 50)])  # 0.10 -> 0.40 at n=100
    assert result.failed
    (row,) = [r for r in result.rows if r.verdict == "drifted"]
    assert row.name == FGSM
    md = result.markdown()
    assert f"| {FGSM} | 0.100 | 0.400 | +0.300 | [0.055, 0.174] | [0.309, 0.498] | drifted |" in md
    assert "2 cells compared, 1 drifted" in md and "gate FAILED" in md


def test_move_inside_sampling_error_passes(baseline):
    assert not compare(baseline, [rec(FGSM, 13), rec(PGD, 50)]).failed  # 0.10 -> 0.13 at n=100


def test_tolerance_widens_the_intervals(baseline):
    now = [rec(FGSM, 40), rec(PGD, 50)]
    assert compare(baseline, now, tolerance=0.1).failed  # gap between the intervals is ~0.135
    assert not compare(baseline, now, tolerance=0.15).failed
    with pytest.raises(ConfigError, match="tolerance"):
        compare(baseline, now, tolerance=-0.1)


def test_missing_cell_fails_and_is_named(baseline):
    result = compare(baseline, [rec(FGSM, 10)])
    assert result.failed
    md = result.markdown()
    assert f"| {PGD} | 0.500 |  |  | [0.404, 0.596] |  | missing now |" in md
    assert "1 missing now" in md


def test_errored_cell_fails(baseline):
    result = compare(baseline, [rec(FGSM, 10), rec(PGD, 0, status="error")])
    assert result.failed
    assert "error (RuntimeError: boom)" in result.markdown()


def test_changed_config_fails(baseline):
    result = compare(baseline, [rec(FGSM, 10), rec(PGD, 50, hash_="other", params={"eps": 0.2})])
    assert result.failed
    assert [row.verdict for row in result.rows] == ["ok", "config changed"]


def test_a_retrained_model_is_compared_by_its_rate(baseline):
    """Only the model's store key changed (its loss or training was edited): the cell is still compared."""
    same = compare(baseline, [rec(FGSM, 12, hash_="h2", model_key="new"), rec(PGD, 50)])
    assert not same.failed
    assert [(row.verdict, row.note) for row in same.rows] == [("ok", "code changed"), ("ok", "")]
    weaker = compare(baseline, [rec(FGSM, 60, hash_="h2", model_key="new"), rec(PGD, 50)])
    assert weaker.failed
    assert [row.verdict for row in weaker.rows] == ["drifted", "ok"]
    assert f"| {FGSM} |" in weaker.markdown() and "drifted (code changed)" in weaker.markdown()


def test_a_model_trained_otherwise_is_a_changed_config(tmp_path):
    """The model's configuration without plugin code (model_probe) is part of what a cell measures: more epochs
    or another architecture is not 'code changed' but a changed configuration, even at the same rate."""
    base = make_baseline(stored(tmp_path, rec(FGSM, 10, model_probe="6-epochs")), "mnist", "quick")
    retrained = rec(FGSM, 10, hash_="h2", model_key="new", model_probe="6-epochs")
    otherwise = rec(FGSM, 10, hash_="h3", model_key="other", model_probe="1-epoch")
    assert [r.verdict for r in compare(base, [retrained]).rows] == ["ok"]
    assert [r.verdict for r in compare(base, [otherwise]).rows] == ["config changed"]


def test_new_cell_is_reported_but_fails_only_when_strict(baseline):
    extra = "mnist/untargeted/cw[c=1]/O:SOFTMAX:CE"
    now = [rec(FGSM, 10), rec(PGD, 50), rec(extra, 3)]
    result = compare(baseline, now)
    assert not result.failed
    assert "new (not in baseline)" in result.markdown() and extra in result.markdown()
    assert compare(baseline, now, strict=True).failed


def test_other_datasets_are_ignored(baseline):
    assert not compare(
        baseline, [rec(FGSM, 10), rec(PGD, 50), rec("cifar10/untargeted/fgsm", 1, dataset="cifar10")]
    ).failed


def test_baseline_excludes_errors_and_other_datasets(tmp_path):
    broken = "mnist/untargeted/cw[c=1]/O:SOFTMAX:CE"
    records = stored(
        tmp_path, rec(FGSM, 10), rec(broken, 0, status="error"), rec("cifar10/untargeted/fgsm", 1, dataset="cifar10")
    )
    b = make_baseline(records, "mnist", "quick")
    assert list(b["cells"]) == [FGSM]
    assert b["errors"] == {broken: {"cell_hash": f"h-{broken}", "error": "RuntimeError: boom"}}
    assert b["cells"][FGSM] == {
        "cell_hash": f"h-{FGSM}",
        "metric": "accuracy",
        "rate": 0.1,
        "n": 100,
        "hits": 10,
        "ci_low": pytest.approx(0.0552, abs=1e-4),
        "ci_high": pytest.approx(0.1744, abs=1e-4),
        "probe_hash": probe_hash({"dataset": "mnist", "seed": 0}),
    }
    assert (b["format"], b["version"], b["dataset"], b["preset"], b["seed"]) == (
        "bench-baseline",
        1,
        "mnist",
        "quick",
        0,
    )
    assert (b["commit"], b["versions"]) == ("abc123", {"bench": "0.1.0"})
    # the cell that errored in the baseline is not silently passed when it is missing now
    result = compare(b, [rec(FGSM, 10)])
    assert result.failed and "missing now (errored in baseline)" in result.markdown()
    with pytest.raises(ConfigError, match="no finished cells of dataset 'fashion_mnist'"):
        make_baseline(records, "fashion_mnist", "quick")


def test_round_trip(tmp_path, baseline):
    path = tmp_path / "sub" / "baseline.json"
    write_baseline(path, baseline)
    assert read_baseline(path) == baseline
    assert [p.name for p in path.parent.iterdir()] == ["baseline.json"]  # no temporary file left behind


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"version": 0}, "format version 0; this bench reads version 1: it is older"),
        ({"version": 2}, "format version 2; this bench reads version 1: it is newer"),
        ({"format": "something"}, "has format 'something'; expected 'bench-baseline'"),
        ({"cells": None}, "'cells' and 'errors' must be objects"),
        ({"cells": {FGSM: {"rate": 0.1}}}, re.escape(f"cell '{FGSM}' has ['rate']; expected the keys")),
    ],
)
def test_malformed_baseline_raises(tmp_path, baseline, change, expected):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({**baseline, **change}))
    with pytest.raises(ConfigError, match=expected) as info:
        read_baseline(path)
    assert str(path) in str(info.value)


def test_old_version_says_how_to_regenerate(tmp_path, baseline):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({**baseline, "version": BASELINE_VERSION - 1}))
    with pytest.raises(ConfigError, match="bench baseline --dataset mnist --preset quick"):
        read_baseline(path)


def test_unreadable_baselines_raise(tmp_path, baseline):
    path = tmp_path / "baseline.json"
    with pytest.raises(ConfigError, match="does not exist"):
        read_baseline(path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_baseline(path)
    path.write_text(json.dumps({k: v for k, v in baseline.items() if k != "cells"}))
    with pytest.raises(ConfigError, match=r"lacks the keys \['cells'\]"):
        read_baseline(path)


def test_latest_row_of_a_cell_wins(tmp_path):
    """The store is keyed by hash, so a changed config leaves its old row; the newest row of each name counts."""
    old = rec(FGSM, 90, hash_="old")
    old.created = "2023-01-01T00:00:00+00:00"
    b = make_baseline(stored(tmp_path, old, rec(FGSM, 10)), "mnist", "quick")
    assert b["cells"][FGSM]["cell_hash"] == f"h-{FGSM}"
    assert not compare(b, [old, rec(FGSM, 10)]).failed
