"""The matrix end to end on tiny models: records, report, reuse, resume after SIGKILL."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.results.store import ResultsStore
from tests.conftest import preset_text, stored_count

PRESET = preset_text(
    "tiny",
    ["O:SOFTMAX:CE", "R:TANH:MSE"],
    {"fgsm": 60, "bim": 60, "pgd": 60, "mim": 60},
    [
        {
            "tables": ["saito2019:3"],
            "setting": "whitebox_untargeted",
            "attack": "fgsm",
            "sweep": {"eps": [0.05, 0.1, 0.3]},
        },
        {
            "tables": ["saito2019:3"],
            "setting": "whitebox_untargeted",
            "attack": "pgd",
            "params": {"eps_step": 0.05},
            "sweep": {"eps": [0.1, 0.3]},
        },
        {"tables": ["saito2019:5"], "setting": "whitebox_targeted", "attack": "bim", "sweep": {"eps": [0.1, 0.3]}},
        {"tables": ["saito2019:6"], "setting": "transfer", "attack": "mim", "sweep": {"eps": [0.1]}},
    ],
    seed=0,
    params={"pgd": {"max_iter": 20}},
)


@pytest.fixture()
def preset(tmp_path, tiny_models):  # tiny_models: the same specs, already in the store
    path = tmp_path / "tiny.toml"
    path.write_text(PRESET)
    return path


def run_matrix(preset, out, *extra):
    args = [
        "matrix",
        "--dataset",
        "mnist",
        "--preset",
        str(preset),
        "--out",
        str(out),
        "--reports-dir",
        str(out / "reports"),
        "--no-progress",
        *extra,
    ]
    return CliRunner().invoke(main, args)


def by_name(store):
    return {r.name: r for r in store.records()}


def preset_cells(records: dict) -> dict:
    """The preset's own cells, without the gradient-health and worst-case cells every run adds."""
    return {k: r for k, r in records.items() if r.setting != "diagnostics" and r.attack != "worst_case"}


def test_matrix_records_every_cell_and_writes_the_report(preset, tmp_path):
    result = run_matrix(preset, tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert "15 cells run, 0 already finished, 0 failed" in result.output
    stored = by_name(ResultsStore(tmp_path / "run" / "results.sqlite"))
    records = preset_cells(stored)
    assert len(records) == 15 and all(r.status == "ok" for r in records.values())
    assert sum(r.setting == "diagnostics" for r in stored.values()) == 3 * 2  # three shares per model

    ce = "O:SOFTMAX:CE"
    pgd_03 = records[f"mnist/whitebox_untargeted/pgd[eps=0.3]/{ce}"]
    assert pgd_03.rate < 0.05  # PGD at eps 0.3 breaks a cross-entropy model
    fgsm = [records[f"mnist/whitebox_untargeted/fgsm[eps={e}]/{ce}"] for e in ("0.05", "0.1", "0.3")]
    assert all(
        b.rate <= a.ci_high for a, b in zip(fgsm[:-1], fgsm[1:], strict=True)
    )  # no rise with eps beyond sampling error
    # one gradient per image for the whole sweep, each of its 3 cells charged a third of it
    assert [r.backward_passes for r in fgsm] == [20, 20, 20]
    bim = [records[f"mnist/whitebox_targeted/bim[eps={e}]/{ce}"] for e in ("0.1", "0.3")]
    assert bim[1].rate > bim[0].rate
    transfer = records[f"mnist/transfer/mim[eps=0.1]/{ce}->R:TANH:MSE"]
    assert transfer.source == ce and transfer.craft_reused == 0  # crafted once, here (no white-box mim cell)
    assert all(r.ci_low <= r.rate <= r.ci_high for r in records.values())

    report = (tmp_path / "run" / "reports" / "mnist" / "README.md").read_text()
    for heading in ("Table 3", "Table 5", "Table 6", "Table 4", "What each attack sees", "Timing", "Failures"):
        assert heading in report
    assert "images per cell: 60" in report and "(0.008)" in report  # CE pgd eps 0.1: the published number
    assert "(0.263)" not in report  # pgd eps 0.08 was not run
    assert "O:SOFTMAX:CE [2 epochs, 3000 training images]" in report  # Table 4: the models the cells used
    csv_lines = (tmp_path / "run" / "reports" / "mnist" / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(stored)
    assert (tmp_path / "run" / "reports" / "mnist" / "plots" / "whitebox_untargeted_fgsm.png").is_file()

    again = run_matrix(preset, tmp_path / "run")
    assert "0 cells run, 15 already finished" in again.output


def test_a_failing_cell_is_recorded_and_the_run_goes_on(preset, tmp_path, monkeypatch):
    from bench import attacks

    def broken(*args, **kwargs):
        raise RuntimeError("simulated attack failure")

    family = attacks.ATTACKS.get("bim")
    monkeypatch.setattr(
        attacks.ATTACKS, "_entries", {**attacks.ATTACKS._entries, "bim": dataclasses.replace(family, build=broken)}
    )
    result = run_matrix(preset, tmp_path / "run")
    assert result.exit_code == 1  # the run finishes, stores and reports, then says that cells failed
    records = preset_cells(by_name(ResultsStore(tmp_path / "run" / "results.sqlite")))
    failed = [r for r in records.values() if r.status == "error"]
    assert len(failed) == 4 and all("simulated attack failure" in r.error for r in failed)
    assert sum(r.status == "ok" for r in records.values()) == 11
    assert "FAILED" in result.output and "4 of 15 cells failed" in result.output


@pytest.mark.slow  # 3 minutes; tests/test_concurrent_runs.py's repeated kills cover it more thoroughly, also slow
def test_sigkill_midway_then_resume_gives_the_records_of_an_uninterrupted_run(preset, tmp_path, bench_home):
    env = {**os.environ, "BENCH_HOME": str(bench_home)}
    cmd = [
        sys.executable,
        "-m",
        "bench",
        "matrix",
        "--dataset",
        "mnist",
        "--preset",
        str(preset),
        "--no-progress",
        "--reports-dir",
        str(tmp_path / "reports"),
    ]
    subprocess.run([*cmd, "--out", str(tmp_path / "a")], env=env, check=True, capture_output=True)

    db = tmp_path / "b" / "results.sqlite"
    proc = subprocess.Popen(
        [*cmd, "--out", str(tmp_path / "b")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    done_at_kill = 0
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        done_at_kill = stored_count(db)
        if done_at_kill >= 2:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert 2 <= done_at_kill < 15, "the run was not killed midway"

    subprocess.run([*cmd, "--out", str(tmp_path / "b")], env=env, check=True, capture_output=True)
    a, b = by_name(ResultsStore(tmp_path / "a" / "results.sqlite")), by_name(ResultsStore(db))
    assert a.keys() == b.keys() and len(preset_cells(a)) == 15
    for name in a:
        assert (a[name].rate, a[name].hits, a[name].per_example) == (b[name].rate, b[name].hits, b[name].per_example)
