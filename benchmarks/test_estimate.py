"""How close the dry-run estimate comes to the run (`pytest benchmarks/test_estimate.py --benchmark-only`).

The benchmark times the estimate of the quick preset from an empty store (its own speed; target under 5 s), then
runs the preset from that empty store once and stores, in the benchmark's extra_info, the estimate beside the
measured minutes (training and attacks) and their ratio (target: within 1.5x either way). A long benchmark
(the quick preset: minutes), run on purpose, never in the test suite.
"""

from __future__ import annotations

import time

import pytest

import bench


@pytest.fixture()
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_quick_preset_estimate_against_its_run(benchmark, empty_home):
    out = empty_home / "results"
    estimate = benchmark.pedantic(bench.estimate_matrix, args=("mnist", "quick"), kwargs={"out": out}, rounds=1)
    start = time.perf_counter()
    run = bench.run_matrix("mnist", "quick", out=out, progress=False)
    measured = time.perf_counter() - start
    benchmark.group = "dry-run estimate, quick preset from an empty store"
    benchmark.extra_info.update(
        estimated_min=round(estimate.seconds / 60, 2),
        estimated_training_min=round(sum(estimate.training.values()) / 60, 2),
        estimated_attacks_min=round(sum(estimate.attacks.values()) / 60, 2),
        measured_min=round(measured / 60, 2),
        ratio_estimated_to_measured=round(estimate.seconds / measured, 2),
    )
    assert not run.summary.failed and run.summary.done > 0
