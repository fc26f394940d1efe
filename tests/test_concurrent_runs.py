"""Runs that share a results store share its work (bench.results.leases), trainings that share a model store train
once (models.store.ModelStore.training_lock), and a run killed again and again at random points ends with the
records of one never interrupted. Real processes, real SQLite, small MNIST subsets and a tiny training."""

from __future__ import annotations

import json
import logging
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import bench
from bench.matrix.groups import craft_groups
from bench.results.leases import Leases, Owner, stored_status
from bench.results.store import ResultsStore, read_records
from models.store import ModelStore
from models.zoo import obtain
from tests.conftest import preset_text, stored_count

MODEL = "O:SOFTMAX:CE"


def tiny_preset(name: str, samples: dict[str, int], groups: list[dict], **more) -> str:
    """A preset on the tiny cross-entropy model of tests/conftest.py (trained once per session, 0.9 clean accuracy)."""
    return preset_text(name, [MODEL], samples, groups, seed=0, **more)


SMALL = tiny_preset(  # three craft groups on 20 images
    "leases-small",
    {"fgsm": 20, "pgd": 20, "bim": 20},
    [
        {"setting": "whitebox_untargeted", "attack": "fgsm", "sweep": {"eps": [0.1, 0.3]}},
        {"setting": "whitebox_untargeted", "attack": "pgd", "sweep": {"eps": [0.1, 0.2]}},
        {"setting": "whitebox_targeted", "attack": "bim", "sweep": {"eps": [0.2]}},
    ],
    diagnostic_samples=20,
    params={"pgd": {"max_iter": 10, "eps_step": 0.05}, "bim": {"max_iter": 10}},
)
# eight craft groups on 50 images, each of a second or so: enough for two runs to share
LARGER = tiny_preset(
    "leases-larger",
    {"fgsm": 50, "pgd": 50, "bim": 50, "mim": 50},
    [
        {"setting": "whitebox_untargeted", "attack": "fgsm", "sweep": {"eps": [0.05, 0.1, 0.3]}},
        *(
            {
                "setting": "whitebox_untargeted",
                "attack": "pgd",
                "params": {"max_iter": n},
                "variant": f"iter={n}",
                "sweep": {"eps": [0.1, 0.3]},
            }
            for n in (20, 30, 40)
        ),
        {"setting": "whitebox_targeted", "attack": "bim", "sweep": {"eps": [0.1, 0.3]}},
        {"setting": "whitebox_targeted", "attack": "pgd", "params": {"max_iter": 20}, "sweep": {"eps": [0.3]}},
        {"setting": "whitebox_untargeted", "attack": "mim", "params": {"max_iter": 20}, "sweep": {"eps": [0.2]}},
        {"setting": "whitebox_untargeted", "attack": "bim", "params": {"max_iter": 20}, "sweep": {"eps": [0.2]}},
    ],
    diagnostic_samples=50,
    params={"pgd": {"eps_step": 0.05}},
)


def write_preset(folder: Path, text: str) -> Path:
    """The preset file, its model trained into the session's store (a process never trains it inside a test)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "preset.toml"
    path.write_text(text)
    obtain(bench.plan_matrix("mnist", path).specs[MODEL], ModelStore(), progress=False)
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return write_preset(tmp_path_factory.mktemp("small"), SMALL)


@pytest.fixture(scope="module")
def small_reference(small, tmp_path_factory) -> Path:
    """The results of an uninterrupted run of the small preset, alone."""
    folder = tmp_path_factory.mktemp("small-reference")
    bench.run_matrix("mnist", small, out=folder, progress=False)
    return folder


def outcomes(folder: Path) -> dict:
    """Per stored cell (the preset's, the gradient-health and worst-case ones): what each image did."""
    return {r.name: (r.status, r.rate, r.hits, r.n, r.per_example, r.image_indices) for r in read_records(folder)}


def group_keys(preset: Path) -> list[str]:
    return [f"group:{g.key}" for g in craft_groups(bench.plan_matrix("mnist", preset).cells)]


ELSEWHERE = Owner("another-host", 4242, None, "other")  # a run on another machine: only its leases' expiry tells


def python(script: str, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *args], text=True, **kwargs)


CLAIMER = """
import json, pathlib, random, sys, time
from bench.results.leases import Leases
store, go, seed = sys.argv[1], pathlib.Path(sys.argv[2]), int(sys.argv[3])
keys = [f"k{i}" for i in range(60)]
random.Random(seed).shuffle(keys)
leases = Leases(store)
while not go.exists():
    time.sleep(0.005)
print(json.dumps([k for k in keys if leases.claim(k).won]), flush=True)
sys.stdin.read()  # alive, holding them, until every claimer is done
"""


def test_of_processes_claiming_the_same_keys_each_key_is_won_once(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite").path
    go = tmp_path / "go"
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
    procs = [python(CLAIMER, str(store), str(go), str(seed), **pipes) for seed in range(3)]
    time.sleep(1.0)
    go.touch()
    won = [json.loads(p.stdout.readline()) for p in procs]
    for p in procs:
        p.communicate(timeout=60)
    assert sorted(k for keys in won for k in keys) == sorted(f"k{i}" for i in range(60))  # each key once
    assert all(p.returncode == 0 for p in procs)


HOLDER = """
import sys, time
from bench.results.leases import Leases
leases = Leases(sys.argv[1])
assert leases.claim("group:x").won
print("held", flush=True)
time.sleep(600)
"""


def test_a_lease_whose_owner_was_sigkilled_is_taken_over_at_once(tmp_path, caplog):
    store = ResultsStore(tmp_path / "results.sqlite").path
    proc = python(HOLDER, str(store), stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "held"
    here = Leases(store)
    lost = here.claim("group:x")
    assert not lost.won and lost.holder.pid == proc.pid  # a live owner on this host keeps it
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with caplog.at_level(logging.WARNING):
        claim = here.claim("group:x")
    assert claim.won and not claim.finished_elsewhere  # its cells were not all stored: run them
    assert "its process is gone" in caplog.text


def test_a_lease_from_another_host_holds_while_renewed_and_is_taken_over_once_it_expires(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite").path
    with Leases(store, 1.0, ELSEWHERE) as there:  # its heartbeat renews every tenth of a second
        assert there.claim("group:x").won
        here = Leases(store)
        time.sleep(1.5)
        assert not here.claim("group:x").won
        there._stop.set()  # the owner stops renewing (its machine stopped): the lease lapses after a second
        there._beat.join()
        time.sleep(1.1)
        assert here.claim("group:x").won
        there.held.clear()


def test_a_lease_released_after_a_run_began_tells_it_the_work_was_finished_elsewhere(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite").path
    with Leases(store) as first, Leases(store) as second:  # two runs of this process, open at once
        assert first.claim("group:x").won and not second.claim("group:x").won
        first.release("group:x")
        assert second.claim("group:x").finished_elsewhere  # begun before the release: the cells stored are done
        second.release("group:x")
    with Leases(store) as later:
        claim = later.claim("group:x")
        assert claim.won and not claim.finished_elsewhere  # begun after it: a rerun, which retries failed cells
    with Leases(store) as another:
        assert another.claim("group:y").won
    assert Leases(store).claim("group:y").won  # a run of this process that ended does not hold it


def test_a_lease_given_up_on_the_way_out_is_free_at_once(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite").path
    with pytest.raises(KeyboardInterrupt), Leases(store) as leases:
        assert leases.claim("group:x").won
        raise KeyboardInterrupt
    claim = Leases(store).claim("group:x")
    assert claim.won and not claim.finished_elsewhere


TRAINER = """
import logging, pathlib, sys, time
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
from models.spec import TrainConfig, make_spec
from models.store import ModelStore
from models.zoo import obtain
spec = make_spec("mnist", "O:SOFTMAX:CE", "cnn", TrainConfig(epochs=1, n_train=200, seed=3))
go = pathlib.Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
print(obtain(spec, ModelStore(sys.argv[1]), progress=False).meta["created"])
"""


def test_two_processes_obtaining_one_untrained_model_train_it_once(tmp_path):
    root, go = tmp_path / "models", tmp_path / "go"
    procs = [python(TRAINER, str(root), str(go), stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    time.sleep(1.0)
    go.touch()
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    trained = [err for _, err in outs if "models.zoo: training " in err]
    waited = [err for _, err in outs if "waiting for another process training" in err]
    assert len(trained) == 1 and len(waited) == 1, outs  # one trained; the other waited, then loaded
    assert outs[0][0] == outs[1][0]  # both hold the one stored model (its meta's creation time)


@pytest.fixture()
def short_leases(monkeypatch):
    monkeypatch.setenv("BENCH_LEASE_SECONDS", "5")  # heartbeats each half second, polls each half second


def test_a_run_waits_for_a_group_another_run_holds_and_takes_it_over_when_its_lease_expires(
    small, small_reference, tmp_path, caplog, short_leases
):
    folder = tmp_path / "run"
    store = ResultsStore(folder / "results.sqlite")
    groups = craft_groups(bench.plan_matrix("mnist", small).cells)
    with caplog.at_level(logging.INFO), Leases(store.path, 2.0, ELSEWHERE) as there:  # renewed while it lives
        assert there.claim(f"group:{groups[1].key}").won
        run, done = start_run(small, folder)
        wait_for_cells(store, [groups[0], groups[2]], run)  # the free groups first; then it waits for the held one
        time.sleep(1.0)
        there._stop.set()  # the other run's machine stops: its lease lapses two seconds after its last renewal
        run.join(timeout=300)
        there.held.clear()
    assert "waiting for 1 unit(s) of work that other runs hold (another-host:4242 (run other))" in caplog.text
    assert f"taking over group:{groups[1].key} from another-host:4242 (run other): its lease expired" in caplog.text
    assert "error" not in done, done
    assert (done["run"].summary.groups_here, done["run"].summary.groups_elsewhere) == (3, 0)
    assert outcomes(folder) == outcomes(small_reference)


def start_run(preset: Path, folder: Path) -> tuple[threading.Thread, dict]:
    """``bench.run_matrix`` in a thread of this process; ``done`` gets its ``run``, or the ``error`` it raised."""
    done: dict = {}

    def run() -> None:
        try:
            done["run"] = bench.run_matrix("mnist", preset, out=folder, progress=False)
        except BaseException as exc:
            done["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


def wait_for_cells(store: ResultsStore, groups: list, run: threading.Thread, seconds: float = 300) -> None:
    """Until every cell of ``groups`` is stored, while ``run`` goes on."""
    cells, deadline = {c.hash for g in groups for c in g.cells}, time.time() + seconds
    while not cells <= set(stored_status(store.path)):
        assert run.is_alive() and time.time() < deadline, "the run did not store the free groups' cells"
        time.sleep(0.2)


def test_a_group_another_run_finishes_while_this_one_waits_is_left_to_it(
    small, small_reference, tmp_path, caplog, short_leases
):
    folder = tmp_path / "run"
    store = ResultsStore(folder / "results.sqlite")
    groups = craft_groups(bench.plan_matrix("mnist", small).cells)
    there = Leases(store.path, 60.0, ELSEWHERE)
    assert there.claim(f"group:{groups[0].key}").won
    with caplog.at_level(logging.INFO):
        run, done = start_run(small, folder)
        wait_for_cells(store, groups[1:], run)
        mine = {c.hash for c in groups[0].cells}
        for record in read_records(small_reference):  # the other run stores the group's cells, then releases it
            if record.cell_hash in mine:
                store.put(record)
        there.release(f"group:{groups[0].key}")
        run.join(timeout=300)
    assert "error" not in done, done
    summary = done["run"].summary
    assert (summary.groups_here, summary.groups_elsewhere) == (2, 1)
    assert "2 groups run here, 1 left to another run" in caplog.text
    assert outcomes(folder) == outcomes(small_reference)


@pytest.mark.slow
def test_a_dask_run_leaves_a_held_group_for_the_end_and_takes_it_over_when_its_lease_expires(
    small, small_reference, tmp_path, caplog, short_leases
):
    pytest.importorskip("distributed")
    folder = tmp_path / "dask"
    held = group_keys(small)[0]
    assert Leases(ResultsStore(folder / "results.sqlite").path, 3.0, ELSEWHERE).claim(held).won
    with caplog.at_level(logging.INFO):
        run = bench.run_matrix("mnist", small, out=folder, progress=False, cluster="local:1")
    assert f"taking over {held} from another-host:4242 (run other): its lease expired" in caplog.text
    assert (run.summary.groups_here, run.summary.groups_elsewhere) == (3, 0)
    assert outcomes(folder) == outcomes(small_reference)


SHARED = re.compile(r"(\d+) groups run here, (\d+) left to another run")


def matrix(preset: Path, out: Path, log: Path) -> subprocess.Popen:
    """``bench -v matrix`` on ``preset`` into ``out``, its stderr (the log) into ``log``."""
    cmd = ["-m", "bench", "-v", "matrix", "--dataset", "mnist", "--preset", str(preset), "--no-progress"]
    cmd += ["--out", str(out), "--reports-dir", str(out.parent / f"{out.name}-reports")]
    with open(log, "w") as err:
        return subprocess.Popen([sys.executable, *cmd], stdout=subprocess.DEVNULL, stderr=err)


@pytest.fixture(scope="module")
def larger(tmp_path_factory) -> Path:
    return write_preset(tmp_path_factory.mktemp("larger"), LARGER)


@pytest.fixture(scope="module")
def larger_reference(larger, tmp_path_factory) -> Path:
    """The results of an uninterrupted run of the larger preset, alone, in a process of its own."""
    folder = tmp_path_factory.mktemp("larger-reference")
    proc = matrix(larger, folder / "out", folder / "log")
    assert proc.wait(timeout=900) == 0, (folder / "log").read_text()
    return folder / "out"


@pytest.mark.slow
def test_two_runs_started_together_on_one_out_share_the_work(larger, larger_reference, tmp_path):
    out = tmp_path / "shared"
    procs = [matrix(larger, out, tmp_path / f"log{i}") for i in range(2)]
    codes = [p.wait(timeout=900) for p in procs]
    logs = [(tmp_path / f"log{i}").read_text() for i in range(2)]
    assert codes == [0, 0], logs
    here = [int(SHARED.search(text).group(1)) for text in logs]
    assert sum(here) == len(group_keys(larger)), logs  # no group crafted twice, none left out
    assert min(here) >= 1, logs  # both did part of it
    assert outcomes(out) == outcomes(larger_reference)


@pytest.mark.slow
def test_kill_and_resume_holds(larger, larger_reference, tmp_path):
    """SIGKILLed at seeded random points (after a random number of stored rows, plus a random delay: in startup,
    crafting, storing) and resumed until it finishes: no cell lost, no row damaged, the records of the uninterrupted
    run; and each resume takes the dead run's leases over at once (it never waits)."""
    reference = larger_reference
    total, out, rng = len(outcomes(reference)), tmp_path / "killed", random.Random(15)
    db, stored_at_kill, logs = out / "results.sqlite", [], []
    for attempt in range(8):
        logs.append(tmp_path / f"log{attempt}")
        proc, target = matrix(larger, out, logs[-1]), rng.randrange(total)
        while proc.poll() is None and stored_count(db) < target:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stored_at_kill.append(stored_count(db))
    logs.append(tmp_path / "log-last")
    assert matrix(larger, out, logs[-1]).wait(timeout=900) == 0, logs[-1].read_text()
    print(f"killed {len(stored_at_kill)} times, with {stored_at_kill} of {total} rows stored")
    assert len(stored_at_kill) >= 4 and any(0 < n < total for n in stored_at_kill), stored_at_kill
    assert not any("waiting for" in log.read_text() for log in logs)  # a dead owner's lease is taken at once
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT count(*) FROM leases WHERE state = 'held'").fetchone()[0] == 0
    for r in read_records(out):  # every row read back and checked (rates in [0, 1], hits <= n, JSON configs)
        if r.per_example is not None and r.hits is not None:
            assert int(np.unpackbits(np.frombuffer(r.per_example, np.uint8))[: r.n].sum()) == r.hits, r.name
    assert outcomes(out) == outcomes(reference)  # 0 lost, 0 extra, each image's outcome as uninterrupted
