"""The dry run's estimate: what it counts (the cells not yet run, the models not yet trained) and how it prices them.
Its accuracy against a measured run is a benchmark (benchmarks/test_estimate.py), not a timed test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import bench
from bench.cli import main
from bench.matrix.estimate import _group_seconds
from bench.matrix.groups import craft_groups
from bench.matrix.measured import craft_identity, measured_passes
from bench.matrix.passes import Throughput
from bench.results.store import read_records
from tests.conftest import preset_text

ROOT = Path(__file__).parent.parent

PRESET = preset_text(
    "tiny-estimate",
    ["O:SOFTMAX:CE", "R:TANH:MSE"],
    {"fgsm": 20, "pgd": 20, "cw_l2": 10},
    [
        {"setting": "whitebox_untargeted", "attack": "fgsm", "sweep": {"eps": [0.1, 0.2, 0.3]}},
        {"setting": "whitebox_untargeted", "attack": "pgd", "sweep": {"eps": [0.1, 0.3]}},
        {"setting": "whitebox_untargeted", "attack": "cw_l2", "sweep": {"c": [0.1, 1.0]}},
    ],
    params={"pgd": {"max_iter": 5}, "cw_l2": {"binary_search_steps": 1, "max_iter": 30}},
)


def test_the_estimate_counts_what_is_left_to_do(tmp_path, tiny_models):  # tiny_models: both trained already
    preset = tmp_path / "tiny.toml"
    preset.write_text(PRESET)
    out = tmp_path / "results"
    before = bench.estimate_matrix("mnist", preset, out=out, progress=False)
    plan = bench.plan_matrix("mnist", preset)
    assert before.training == {}  # both models are in the store
    assert before.groups == len(craft_groups(plan.cells)) == 6 and before.crafts == 14
    assert set(before.attacks) == {"fgsm", "pgd", "cw_l2"}
    # PGD: 2 x 20 images x 5 passes; FGSM: 20 images x one gradient for all its eps; CW: 2 x 10 images x 30 passes
    assert before.attacks["fgsm"] < before.attacks["pgd"] < before.attacks["cw_l2"]
    assert "estimated time" in before.describe() and "cw_l2" in before.describe()

    bench.run_matrix("mnist", preset, out=out, attacks=["fgsm"], progress=False)
    after = bench.estimate_matrix("mnist", preset, out=out, progress=False)
    assert set(after.attacks) == {"pgd", "cw_l2"} and after.crafts == 8  # FGSM's cells are done


def test_models_missing_from_the_store_are_priced_to_train(tmp_path):
    preset = tmp_path / "untrained.toml"
    preset.write_text(PRESET.replace("epochs = 2", "epochs = 3"))  # a training no store holds
    estimate = bench.estimate_matrix("mnist", preset, out=tmp_path / "results", progress=False)
    assert set(estimate.training) == {"O:SOFTMAX:CE", "R:TANH:MSE"}
    assert all(seconds > 0 for seconds in estimate.training.values())
    longer = tmp_path / "longer.toml"
    longer.write_text(PRESET.replace("epochs = 2", "epochs = 6"))
    doubled = bench.estimate_matrix("mnist", longer, out=tmp_path / "results", progress=False)
    ratio = sum(doubled.training.values()) / sum(estimate.training.values())
    assert 1.2 < ratio < 3.5  # twice the epochs: about twice the time (each estimate measures its own step time)


class _FixedPrices:
    """A price per pass that does not depend on the clock, so that the pricing rule itself is what is tested."""

    def at(self, label: str, batch: int) -> Throughput:
        return Throughput(forward_s=1e-3, backward_s=2e-3, batch_size=batch)


def test_crafts_are_priced_by_the_passes_a_store_measured_else_by_their_bound():
    measured = measured_passes(read_records(ROOT / "reports/mnist/store"))  # a real run's store
    groups = [g for g in craft_groups(bench.plan_matrix("mnist", "paper").cells) if g.attack in ("lbfgs", "cw_l2")]
    assert groups
    for group in groups:
        n = group.crafts[0].n_samples
        seconds, found = _group_seconds(group, 128, _FixedPrices(), measured)
        assert found == len(group.crafts)  # every craft of the paper preset is in its committed store
        stored = [measured[craft_identity(c.craft_model, c.attack, dict(c.params), c.targeted)] for c in group.crafts]
        assert seconds == pytest.approx(n * sum(f * 1e-3 + b * 2e-3 for f, b in stored))
        bound, none_found = _group_seconds(group, 128, _FixedPrices(), {})
        assert none_found == 0 and bound == pytest.approx(group.passes * 3e-3)
        assert seconds < bound  # these attacks stop an image at its first success: the bound overstates them


def test_the_dry_run_reads_passes_from_a_store_and_refuses_a_path_without_one(tmp_path):
    args = ["matrix", "--dataset", "mnist", "--models", "O:SOFTMAX:CE", "--attacks", "lbfgs", "--out", str(tmp_path)]
    printed = CliRunner().invoke(main, [*args, "--dry-run", "--passes-from", str(ROOT / "reports/mnist/store")])
    assert printed.exit_code == 0, printed.output
    every = re.search(r"passes per image: (\d+) of (\d+) crafts as measured in (\S+)", printed.output)
    assert every and every[1] == every[2] != "0" and "reports/mnist/store" in every[3]
    bare = CliRunner().invoke(main, [*args, "--dry-run"])  # an empty results store: every craft at its bound
    assert f"{every[2]} crafts at their family's bound" in bare.output and "as measured" not in bare.output
    missing = CliRunner().invoke(main, [*args, "--dry-run", "--passes-from", str(tmp_path / "nowhere")])
    assert missing.exit_code != 0 and "nowhere" in missing.output and "results store" in missing.output
    not_dry = CliRunner().invoke(main, [*args, "--passes-from", str(ROOT / "reports/mnist/store")])
    assert not_dry.exit_code == 2 and "--dry-run" in not_dry.output
