"""The dry run's estimate: what it counts (the cells not yet run, the models not yet trained) and how it prices them.
Its accuracy against a measured run is a benchmark (benchmarks/test_estimate.py), not a timed test."""

from __future__ import annotations

import bench
from bench.matrix.groups import craft_groups
from tests.conftest import preset_text

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
