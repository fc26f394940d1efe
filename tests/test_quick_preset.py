"""The quick preset end to end, from an empty model store, through the real command line (slow: minutes).

Asserts facts that would be false if the harness were wrong, not the papers' numbers."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.results.store import ResultsStore

pytestmark = pytest.mark.slow

CE = "O:SOFTMAX:CE"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The quick preset's run: the one `.ci/run` just made for the regression gate (BENCH_QUICK_RUN), or a fresh one."""
    reuse = os.environ.get("BENCH_QUICK_RUN")
    if reuse:
        root = Path(reuse)
        records = {r.name: r for r in ResultsStore(root / "run" / "results.sqlite").records()}
        return root, records, None
    root = tmp_path_factory.mktemp("quick")
    env = {**os.environ, "BENCH_HOME": str(root / "home")}  # an empty store: the run trains its models
    cmd = [sys.executable, "-m", "bench", "matrix", "--dataset", "mnist", "--preset", "quick", "--no-progress"]
    cmd += ["--out", str(root / "run"), "--reports-dir", str(root / "reports")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    records = {r.name: r for r in ResultsStore(root / "run" / "results.sqlite").records()}
    return root, records, done.stdout


def rates(records, setting, attack, eps_values, model=CE):
    return [records[f"mnist/{setting}/{attack}[eps={e}]/{model}"] for e in eps_values]


def test_every_cell_finished(quick_run):
    _, records, stdout = quick_run
    cells = [r for r in records.values() if r.setting != "diagnostics" and r.attack != "worst_case"]
    assert len(cells) == 319 and all(r.status == "ok" for r in records.values()), stdout
    assert sum(r.setting == "diagnostics" for r in records.values()) == 3 * 5  # three shares per model
    assert stdout is None or "0 failed" in stdout


def test_the_worst_case_is_never_above_an_attack_it_combines_and_has_a_verdict_per_model(quick_run):
    root, records, _ = quick_run
    worst = [r for r in records.values() if r.attack == "worst_case"]
    assert len(worst) >= 5 * 3  # every model at eps 0.1, 0.2, 0.3 at least
    for w in worst:
        for name in w.config["components"]:
            assert w.hits <= records[name].hits, (w.name, name)
    report = (root / "reports" / "mnist" / "README.md").read_text()
    section = report.split("## The answer")[1].split("## ")[0]
    models = {r.model for r in records.values()}
    assert all(f"- **{m}**: " in section for m in models), section


def test_pgd_at_eps_0_3_breaks_the_cross_entropy_model(quick_run):
    _, records, _ = quick_run
    assert rates(records, "whitebox_untargeted", "pgd", ["0.3"])[0].rate < 0.05


@pytest.mark.parametrize(
    "attack, eps_values",
    [
        ("fgsm", ["0.01", "0.05", "0.1", "0.2"]),
        ("bim", ["0.01", "0.05", "0.1", "0.2"]),
        ("pgd", ["0.02", "0.04", "0.08", "0.1", "0.3"]),
    ],
)
def test_accuracy_does_not_rise_with_eps_beyond_sampling_error(quick_run, attack, eps_values):
    _, records, _ = quick_run
    for model in {r.model for r in records.values()}:
        cells = rates(records, "whitebox_untargeted", attack, eps_values, model)
        for smaller, larger in zip(cells[:-1], cells[1:], strict=True):
            assert larger.ci_low <= smaller.ci_high, (model, smaller.name, smaller.rate, larger.name, larger.rate)


@pytest.mark.parametrize("attack", ["fgsm", "bim", "mim", "pgd"])
def test_a_targeted_attack_succeeds_more_often_at_the_larger_eps(quick_run, attack):
    _, records, _ = quick_run
    eps_small, eps_large = ("0.04", "0.1") if attack == "pgd" else ("0.1", "0.3")
    small, large = rates(records, "whitebox_targeted", attack, [eps_small, eps_large])
    assert large.rate > small.rate, (small.rate, large.rate)


def test_the_report_has_the_papers_tables_and_raw_results(quick_run):
    root, records, _ = quick_run
    folder = root / "reports" / "mnist"
    report = (folder / "README.md").read_text()
    for heading in ("Table 3", "Table 4", "Table 5", "Table 6", "Table 7", "vu2018", "Timing", "What each attack sees"):
        assert heading in report, heading
    assert report.count("[1 epochs, 20000 training images] (cnn)") == 5  # Table 4 names the lighter trainings
    with open(folder / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == len(records)
    assert (folder / "plots" / "whitebox_untargeted_pgd.png").stat().st_size > 1000
