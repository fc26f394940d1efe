"""The regression gate through the command line: a rerun passes, a weakened attack fails, bad baselines are refused."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.results.store import ResultsStore
from tests.conftest import made_older, preset_text

PRESET = preset_text(
    "tiny-gate",
    ["O:SOFTMAX:CE", "R:TANH:MSE"],
    {"pgd": 60},
    [
        {
            "tables": ["saito2019:3"],
            "setting": "whitebox_untargeted",
            "attack": "pgd",
            "params": {"eps_step": 0.05, "max_iter": 20},
            "sweep": {"eps": [0.1, 0.3]},
        }
    ],
    seed=0,
)


@pytest.fixture()
def gate_args(tmp_path, tiny_models):  # tiny_models: the preset's models, already in the store
    path = tmp_path / "tiny-gate.toml"
    path.write_text(PRESET)
    return ["--dataset", "mnist", "--preset", str(path), "--no-progress"]


def invoke(*args):
    return CliRunner().invoke(main, list(map(str, args)))


def test_a_rerun_passes_and_a_weakened_pgd_fails_the_gate(gate_args, tmp_path, monkeypatch):
    baseline = tmp_path / "baseline.json"
    made = invoke("baseline", *gate_args, "--run-dir", tmp_path / "a", "--out", baseline)
    assert made.exit_code == 0, made.output
    assert len(json.loads(baseline.read_text())["cells"]) == 4

    same = invoke("check", *gate_args, "--run-dir", tmp_path / "b", "--baseline", baseline)
    assert same.exit_code == 0, same.output  # a clean rerun reproduces the baseline (deterministic on the CPU)
    assert "0 drifted" in same.output

    from bench import attacks

    family = attacks.ATTACKS.get("pgd")

    def weakened(est, a, targeted, bs):  # a tenth of the iterations, same configuration (same cell hashes)
        return family.build(est, {**a, "max_iter": max(a["max_iter"] // 10, 1)}, targeted, bs)

    monkeypatch.setattr(
        attacks.ATTACKS, "_entries", {**attacks.ATTACKS._entries, "pgd": dataclasses.replace(family, build=weakened)}
    )
    weak = invoke("check", *gate_args, "--run-dir", tmp_path / "c", "--baseline", baseline)
    assert weak.exit_code == 1, weak.output
    assert "drifted" in weak.output and "pgd[eps=0.3]/O:SOFTMAX:CE" in weak.output


def test_a_malformed_baseline_is_refused_before_any_work(gate_args, tmp_path):
    bad = tmp_path / "old.json"
    bad.write_text(json.dumps({"format": "bench-baseline", "version": 0, "dataset": "mnist", "preset": "quick"}))
    result = invoke("check", *gate_args, "--run-dir", tmp_path / "never", "--baseline", bad)
    assert result.exit_code == 2 and "version" in result.output and str(bad) in result.output
    assert not (tmp_path / "never").exists()


def test_reading_a_results_folder_without_the_cells_reports_them_missing(gate_args, tmp_path):
    baseline = tmp_path / "baseline.json"
    assert invoke("baseline", *gate_args, "--run-dir", tmp_path / "a", "--out", baseline).exit_code == 0
    ResultsStore(tmp_path / "empty" / "results.sqlite")  # a store without this preset's cells
    result = invoke("check", *gate_args, "--results", tmp_path / "empty", "--baseline", baseline)
    assert result.exit_code == 1 and result.output.count("missing now") >= 4
    (tmp_path / "typo").mkdir()  # no store at all: named in one line, not read as "everything missing"
    result = invoke("check", *gate_args, "--results", tmp_path / "typo", "--baseline", baseline)
    assert result.exit_code == 2 and "typo holds no results.sqlite" in result.output


def test_checking_a_committed_store_never_writes_to_it(tmp_path):
    """`bench check --results` reads: the committed MNIST store, made older than the image_indices column, is
    not migrated, and no -wal file is left behind."""
    import hashlib
    import shutil
    from pathlib import Path

    committed = Path(__file__).parent.parent / "reports" / "mnist" / "store"
    copy = tmp_path / "store"
    shutil.copytree(committed, copy)
    made_older(copy / "results.sqlite")
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in copy.iterdir()}
    base = tmp_path / "base.json"
    args = ["--dataset", "mnist", "--preset", "paper", "--results", copy]
    assert invoke("baseline", *args, "--out", base).exit_code == 0
    assert invoke("check", *args, "--baseline", base).exit_code == 0
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in copy.iterdir()} == before
