"""Image shards: a cell crafted in pieces gives the same record however its shards are shared out, on Dask or in
turn; a driver killed mid-run is rerun with the same command and resumes from the store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import bench
from bench.matrix.shards import shard_ranges
from bench.results.store import read_records
from tests.conftest import preset_text, stored_count

distributed = pytest.importorskip("distributed")

GROUPS = [
    {"setting": "whitebox_untargeted", "attack": "fgsm", "sweep": {"eps": [0.1, 0.3]}},
    {"setting": "whitebox_untargeted", "attack": "pgd", "sweep": {"eps": [0.1, 0.2]}},  # random starts, one call
]
PARAMS = {"pgd": {"max_iter": 10, "eps_step": 0.02}}


def sharded_preset(folder, shard_images: int):
    path = folder / f"sharded-{shard_images}.toml"
    models = ["O:SOFTMAX:CE", "R:TANH:MSE"]
    path.write_text(
        preset_text("sharded", models, {"fgsm": 40, "pgd": 40}, GROUPS, shard_images=shard_images, params=PARAMS)
    )
    return path


def outcomes(folder) -> dict:
    """Per cell: its status, what each image did, its images, and its norms (timings and provenance aside)."""
    return {
        r.name: (r.status, r.hits, r.n, r.per_example, r.image_indices, r.clean_accuracy, r.l2_mean, r.linf_median)
        for r in read_records(folder)
    }


def test_shards_cover_the_images_in_pieces_of_the_size_the_cell_fixes():
    assert shard_ranges(40, 15) == [(0, 15), (15, 30), (30, 40)]
    assert shard_ranges(40, 0) == [(0, 40)] and shard_ranges(40, 40) == [(0, 40)] and shard_ranges(40, 99) == [(0, 40)]


def test_a_shard_as_large_as_the_cell_keeps_the_cells_keys_and_a_smaller_one_changes_them(tmp_path):
    whole = {c.name: c for c in bench.plan_matrix("mnist", sharded_preset(tmp_path, 0)).cells}
    large = {c.name: c for c in bench.plan_matrix("mnist", sharded_preset(tmp_path, 40)).cells}
    small = {c.name: c for c in bench.plan_matrix("mnist", sharded_preset(tmp_path, 15)).cells}
    assert {n: c.hash for n, c in large.items()} == {n: c.hash for n, c in whole.items()}
    assert all(small[n].hash != whole[n].hash and small[n].craft_key != whole[n].craft_key for n in whole)
    from_option = bench.plan_matrix("mnist", sharded_preset(tmp_path, 0), shard_images=15).cells
    assert {c.name: c.hash for c in from_option} == {n: c.hash for n, c in small.items()}


@pytest.fixture(scope="module")
def sharded_serial(tmp_path_factory, tiny_models) -> tuple:
    folder = tmp_path_factory.mktemp("sharded")
    preset = sharded_preset(folder, 15)
    run = bench.run_matrix("mnist", preset, out=folder / "serial", progress=False)
    assert run.summary.done == 8 and not run.summary.failed
    return preset, outcomes(folder / "serial"), folder


def test_a_sharded_run_on_dask_gives_the_serial_records(sharded_serial, tmp_path):
    from distributed import LocalCluster

    preset, serial, _ = sharded_serial
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        run = bench.run_matrix(
            "mnist", preset, out=tmp_path / "dask", progress=False, scheduler=cluster.scheduler_address
        )
    assert run.summary.done == 8 and not run.summary.failed
    assert outcomes(tmp_path / "dask") == serial
    cells = [outcome for name, outcome in serial.items() if "/fgsm[" in name or "/pgd[" in name]
    assert len(cells) == 8 and all(n == 40 for (_, _, n, *_) in cells)  # the shards' images, merged
    assert {p.name.split(".")[1] for p in (tmp_path / "dask" / "adversarial").glob("*.npz")} == {"s0", "s15", "s30"}


def test_sharding_an_attack_without_randomness_changes_no_outcome(sharded_serial):
    preset, sharded, folder = sharded_serial
    bench.run_matrix("mnist", preset, out=folder / "whole", progress=False, attacks=["fgsm"], shard_images=0)
    whole = outcomes(folder / "whole")
    assert len(whole) == 4 and whole == {name: sharded[name] for name in whole}


@pytest.mark.slow
def test_a_driver_killed_mid_run_is_rerun_and_resumes(sharded_serial, tmp_path):
    """The whole driver (its local cluster too) SIGKILLed once some records are stored, as a machine that dies;
    the same command again finishes the run, with the serial records."""
    preset, serial, _ = sharded_serial
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "bench", "matrix", "--dataset", "mnist", "--preset", str(preset)]
    command += ["--out", str(out), "--reports-dir", str(tmp_path / "reports"), "--no-progress"]
    command += ["--executor", "dask", "--cluster", "local:2"]
    driver = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stored = _wait_for_records(out, driver)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    assert 0 < stored < len(serial), "the driver finished before it could be killed mid-run"
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert outcomes(out) == serial


def _wait_for_records(out, driver, timeout: float = 300.0) -> int:
    """How many records the store holds once it holds one (polled while the driver runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and driver.poll() is None:
        count = stored_count(out / "results.sqlite")
        if count:
            return count
        time.sleep(0.05)
    raise AssertionError(f"no record stored while the driver ran: {driver.stderr.read().decode()[-3000:]}")


def test_the_plan_says_which_cells_are_sharded(tmp_path):
    from click.testing import CliRunner

    from bench.cli import main

    preset = sharded_preset(tmp_path, 0)
    base = ["matrix", "--dataset", "mnist", "--preset", str(preset), "--out", str(tmp_path / "r"), "--dry-run"]
    sharded = CliRunner().invoke(main, [*base, "--shard-images", "15"])
    assert sharded.exit_code == 0, sharded.output
    assert "crafted in shards of: fgsm=15 images, pgd=15 images" in sharded.output
    assert "shards" not in CliRunner().invoke(main, base).output
    refused = CliRunner().invoke(main, [*base, "--shard-images", "-1"])
    assert refused.exit_code == 2 and "-1" in refused.output
