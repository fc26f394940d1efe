"""The cost model (bench.analyses.cost_model, `bench cost-model`) on a copy of the committed MNIST store: totals
scale as they must, whole tasks bound what more GPUs buy, the command prints its assumption and refuses bad values
by name, and docs/cost-model.md holds the table the command makes now."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.analyses import cost_model as cm
from bench.cli import main
from bench.matrix.measured import measured_passes
from bench.results.store import read_records

ROOT = Path(__file__).parent.parent
THROUGHPUT = {"mnist": 15_000.0, "cifar10": 11_500.0, "vu2018": 60_000.0}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cost_model") / "store"
    folder.mkdir()
    shutil.copy(ROOT / "reports/mnist/store/results.sqlite", folder / "results.sqlite")
    return folder


@pytest.fixture(scope="module")
def inputs(store):
    measured = measured_passes(read_records(store))
    return measured, {"mnist": cm.paper_groups("mnist", measured)}, cm.vu2018_training()


def assumptions(**changes) -> cm.Assumptions:
    return replace(cm.Assumptions(throughput=dict(THROUGHPUT)), **changes)


def by_work(rows):
    return {row.work.split(",")[0].split(":")[0]: row for row in rows}


def test_twice_the_images_twice_the_attack_time(inputs):
    _, matrices, training = inputs
    half = by_work(cm.cost_table(matrices, training, assumptions(images=5_000)))
    full = by_work(cm.cost_table(matrices, training, assumptions(images=10_000)))
    matrix = "MNIST paper matrix"
    assert full[matrix].wall[1] == pytest.approx(2 * half[matrix].wall[1], rel=1e-12)
    assert full[matrix].pairs == pytest.approx(2 * half[matrix].pairs, rel=1e-12)
    assert full[matrix].tasks == 2 * half[matrix].tasks  # shards of 1,000: 5 and 10 per group
    assert full["vu2018 training"].wall == half["vu2018 training"].wall  # training does not depend on it


@pytest.mark.parametrize("shard", [0, 1_000])
def test_one_gpu_sums_the_tasks_and_none_beat_the_longest(inputs, shard):
    _, matrices, training = inputs
    a = assumptions(shard_images=shard, gpus=(1, 8, 64, 10_000))
    tasks = cm.matrix_tasks(matrices["mnist"], a, "mnist")
    row = by_work(cm.cost_table(matrices, training, a))["MNIST paper matrix"]
    assert row.tasks == len(tasks) == len(matrices["mnist"]) * (10 if shard else 1)
    assert row.wall[1] == pytest.approx(sum(tasks), rel=1e-12)
    assert row.longest == max(tasks)
    for gpus in a.gpus:
        assert row.wall[gpus] >= max(max(tasks), sum(tasks) / gpus) * (1 - 1e-12)
    if not shard:  # whole cells: 64 GPUs wait for the longest task, far above 1/64 of the sum
        assert row.wall[64] == max(tasks) > 2 * sum(tasks) / 64
    assert row.wall[10_000] == max(tasks)  # a GPU per task: the longest one


def test_training_one_model_one_task(inputs):
    _, matrices, training = inputs
    a = assumptions()
    row = by_work(cm.cost_table(matrices, training, a))["vu2018 training"]
    per_model = 100_000 * training.batch * (training.attack_passes + 1) / THROUGHPUT["vu2018"]
    assert (training.batch, training.attack_passes, len(training.models)) == (50, 40, 6)
    assert row.wall[1] == pytest.approx(6 * per_model)
    assert row.wall[8] == row.wall[64] == pytest.approx(per_model)  # more GPUs than models do not help


def test_passes_from_the_store_else_the_bound(inputs):
    measured, matrices, _ = inputs
    groups = matrices["mnist"]
    assert all(g.measured == g.crafts for g in groups)  # the committed store ran every craft of the preset
    bound = cm.paper_groups("mnist", {})
    assert not any(g.measured for g in bound)
    pgd = [g for g in bound if g.attack == "pgd" and g.crafts == 4]
    assert pgd and all(g.backward == 4 * 40 for g in pgd)  # PGD's max_iter 40, four eps
    cw_measured = sum(g.backward for g in groups if g.attack == "cw_l2")
    cw_bound = sum(g.backward for g in bound if g.attack == "cw_l2")
    assert 0 < cw_measured < cw_bound  # CW stops an image at its first success: under its bound


def test_cli_prints_the_assumption(store, tmp_path):
    page = tmp_path / "cost-model.md"
    result = CliRunner().invoke(
        main, ["cost-model", "--store", str(store), "--images", "2000", "--gpus", "1,4", "--write", str(page)]
    )
    assert result.exit_code == 0, result.output
    assert "GPU throughput, assumed (no GPU was measured)" in result.output
    assert "| 1 GPU | 4 GPUs |" in result.output
    assert "**Images per cell:** 2,000" in result.output
    assert page.read_text() in result.output
    assert f"bench cost-model --store {store} --images 2000 --gpus 1,4 --write {page}" in page.read_text()


@pytest.mark.parametrize(
    "args, named",
    [
        (["--gpus", "0,8"], "--gpus 0,8"),
        (["--gpus", "one"], "--gpus one"),
        (["--images", "20000"], "--images 20000"),
        (["--throughput", "mnist=-3"], "--throughput mnist=-3"),
        (["--throughput", "gpu=3"], "unknown key 'gpu'"),
        (["--forward-share", "1.5"], "--forward-share 1.5"),
        (["--tflops", "0"], "--tflops 0"),
        (["--densenet-depth", "41"], "--densenet-depth 41"),
        (["--store", "no/such/store"], "results store no/such/store does not exist"),
    ],
)
def test_bad_values_named(args, named):
    result = CliRunner().invoke(main, ["cost-model", *args])
    assert result.exit_code == 2
    assert named in result.output and "expected" in result.output
    assert "Traceback" not in result.output


def test_docs_hold_the_table_of_now(inputs, store):
    """docs/cost-model.md was written by the command, from these numbers: its table is the one they make."""
    _, _, training = inputs
    measured = measured_passes(read_records(store))
    matrices = {d: cm.paper_groups(d, measured) for d in cm.DATASETS}
    defaults = cm.default_throughput()
    a = cm.Assumptions(throughput={k: v[0] for k, v in defaults.items()})
    lines = cm.table_lines(cm.cost_table(matrices, training, a), a)
    docs = (ROOT / "docs/cost-model.md").read_text()
    assert "\n".join(lines) in docs, "docs/cost-model.md is stale: rerun the command named at its top"
