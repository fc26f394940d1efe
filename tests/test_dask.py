"""The matrix on a real Dask cluster of worker processes: the same records as the serial runner, even when a worker
is killed in the middle of a group."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import bench
from bench.matrix.dask_run import PRIVATE_FOLDER
from bench.results.store import read_records
from tests.conftest import preset_text

distributed = pytest.importorskip("distributed")

PRESET = preset_text(
    "tiny-dask",
    ["O:SOFTMAX:CE", "R:TANH:MSE"],
    {"fgsm": 40, "pgd": 40, "cw_l2": 10},
    [
        {"setting": "whitebox_untargeted", "attack": "fgsm", "sweep": {"eps": [0.1, 0.3]}},
        {"setting": "whitebox_untargeted", "attack": "pgd", "sweep": {"eps": [0.1, 0.2]}},
        {"setting": "whitebox_targeted", "attack": "pgd", "sweep": {"eps": [0.3]}},
        {"setting": "transfer", "attack": "pgd", "sweep": {"eps": [0.2]}},
        {"setting": "whitebox_untargeted", "attack": "cw_l2", "sweep": {"c": [0.1, 1.0]}},
    ],
    transfer_source="O:SOFTMAX:CE",
    params={"pgd": {"max_iter": 30, "eps_step": 0.02}, "cw_l2": {"binary_search_steps": 2, "max_iter": 50}},
)


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as local:
        yield local


@pytest.fixture(scope="module")
def preset(tmp_path_factory, tiny_models):  # tiny_models: the same two models, already in the store
    path = tmp_path_factory.mktemp("dask-preset") / "tiny-dask.toml"
    path.write_text(PRESET)
    return path


@pytest.fixture(scope="module")
def serial(preset, tmp_path_factory) -> dict:
    """The serial runner's outcomes for the preset: what every Dask run must give."""
    folder = tmp_path_factory.mktemp("serial")
    bench.run_matrix("mnist", preset, out=folder, progress=False)
    return outcomes(folder)


def outcomes(folder) -> dict:
    """Per cell: what each image did, and its images (timings and provenance aside)."""
    return {r.name: (r.status, r.hits, r.n, r.per_example, r.image_indices) for r in read_records(folder)}


def test_dask_gives_the_serial_records(preset, serial, tmp_path, cluster):
    on_dask = bench.run_matrix(
        "mnist", preset, out=tmp_path / "dask", progress=False, scheduler=cluster.scheduler_address
    )
    assert on_dask.summary.done > 10 and not on_dask.summary.failed
    assert outcomes(tmp_path / "dask") == serial


def test_a_worker_killed_mid_group_still_gives_the_serial_records(preset, serial, tmp_path, cluster):
    from distributed import Client

    done = {}
    run = threading.Thread(
        target=lambda: done.update(
            run=bench.run_matrix(
                "mnist", preset, out=tmp_path / "dask", progress=False, scheduler=cluster.scheduler_address
            )
        )
    )
    run.start()
    with Client(cluster.scheduler_address) as client:
        victim = _busy_worker(client)
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)  # its nanny starts a fresh worker; the scheduler reschedules the task
    run.join(timeout=600)
    assert not run.is_alive() and not done["run"].summary.failed
    assert outcomes(tmp_path / "dask") == serial


def _busy_worker(client, timeout: float = 120.0) -> str:
    """The address of a worker running a craft-group task."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker, keys in client.processing().items():
            if any(str(k).startswith("group-") for k in keys):
                return worker
        time.sleep(0.05)
    raise AssertionError("no craft-group task started within the timeout")


def test_workers_with_no_shared_disk_train_and_attack_in_their_own_folders(tmp_path, cluster):
    from models.store import ModelStore

    # 1,001 training images: a spec no other test trains, though the model store is shared between test workers
    untrained = PRESET.replace("epochs = 2", "epochs = 1").replace("n_train = 3000", "n_train = 1001")
    preset = tmp_path / "private.toml"
    preset.write_text(untrained)  # models no store holds yet: trained on a worker, sent back through the scheduler
    plan = bench.plan_matrix("mnist", preset)
    assert not any(ModelStore().has(spec) for spec in plan.specs.values())
    on_dask = bench.run_matrix(
        "mnist", preset, out=tmp_path / "dask", progress=False, scheduler=cluster.scheduler_address, shared_disk=False
    )
    assert not on_dask.summary.failed
    assert not list((tmp_path / "dask").glob("adversarial/*.npz"))  # crafted and cached on the workers
    assert all(ModelStore().has(spec) for spec in plan.specs.values())  # the driver's store has what they trained
    # the workers kept their copies in their Dask scratch folders (which Dask removes as a worker closes)
    with distributed.Client(cluster) as client:
        kept = client.run(lambda dask_worker: os.path.isdir(f"{dask_worker.local_directory}/{PRIVATE_FOLDER}/models"))
    assert any(kept.values()), kept
    bench.run_matrix("mnist", preset, out=tmp_path / "serial", progress=False)  # the same models, from the store
    assert outcomes(tmp_path / "dask") == outcomes(tmp_path / "serial")


def test_a_cluster_started_for_the_run_gives_the_serial_records(preset, serial, tmp_path):
    only = {"progress": False, "attacks": ["pgd"], "settings": ["whitebox_untargeted"]}
    on_dask = bench.run_matrix("mnist", preset, out=tmp_path / "dask", cluster="local:2", **only)
    assert on_dask.summary.done == 4 and not on_dask.summary.failed  # 2 eps x 2 models
    cells = {name: outcome for name, outcome in outcomes(tmp_path / "dask").items() if "/pgd[" in name}
    assert len(cells) == 4 and cells == {name: serial[name] for name in cells}


def test_the_command_line_asks_for_dask_explicitly_and_prints_the_slurm_job_script(tmp_path):
    from click.testing import CliRunner

    from bench.cli import main

    runner = CliRunner()
    base = ["matrix", "--dataset", "mnist", "--preset", "quick", "--out", str(tmp_path / "r")]
    refused = runner.invoke(main, [*base, "--cluster", "local:2", "--dry-run"])
    assert refused.exit_code == 2 and "add --executor dask" in refused.output
    slurm = [
        "--executor",
        "dask",
        "--cluster",
        "slurm",
        "--slurm-queue",
        "gpu",
        "--slurm-gpus",
        "1",
        "--slurm-jobs",
        "8",
    ]
    printed = runner.invoke(main, [*base, *slurm, "--dry-run"])
    assert printed.exit_code == 0, printed.output
    assert "each of the 8 SLURM jobs" in printed.output
    assert "#SBATCH -p gpu" in printed.output and "--gres=gpu:1" in printed.output and "dask_worker" in printed.output
