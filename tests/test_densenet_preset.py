"""The densenet preset: saito2019's Tables 3 and 5 and the attacks that know the model, on DenseNet-BC-22."""

from __future__ import annotations

import pytest

import bench
from bench.errors import BenchError, ConfigError


def test_the_densenet_preset_runs_saito2019_s_tables_and_the_worst_case_attacks_on_densenet_bc_22():
    plan = bench.plan_matrix("mnist", "densenet")
    assert set(plan.specs) == {"O:SOFTMAX:CE", "O:SOFTMAX:MSE", "R:TANH:MSE"}
    assert {(s.arch, s.densenet_depth, s.densenet_growth) for s in plan.specs.values()} == {("densenet", 22, 12)}
    tables = {t for c in plan.cells for t in c.tables}
    assert tables == {"saito2019:3", "saito2019:5", "robustness"}
    knows_the_model = {c.attack for c in plan.cells if "robustness" in c.tables}
    assert knows_the_model == {"pgd_margin", "pgd_margin_pretanh", "apgd", "square"}
    paper = bench.plan_matrix("mnist", "paper")
    assert {c.attack for c in paper.cells if "saito2019:3" in c.tables} == {
        c.attack for c in plan.cells if "saito2019:3" in c.tables
    }


def test_a_preset_s_densenet_depth_must_be_6n_plus_4(tmp_path):
    preset = tmp_path / "deep.toml"
    preset.write_text('inherit = "densenet"\nname = "deep"\ndensenet_depth = 21\n')
    with pytest.raises(BenchError, match="depth 21 must be 6n"):
        bench.plan_matrix("mnist", preset)


def test_a_preset_inherits_through_a_chain_and_a_cycle_is_refused(tmp_path):
    from bench.matrix.preset import load_preset

    (tmp_path / "b.toml").write_text('inherit = "vu2018_fast"\nname = "b"\narch = "small_cnn"\n')
    (tmp_path / "a.toml").write_text('inherit = "b.toml"\nname = "a"\ntraining_seeds = [0, 1]\n')
    a = load_preset(str(tmp_path / "a.toml"))
    assert (a.name, a.arch, a.training_seeds) == ("a", "small_cnn", (0, 1))
    assert a.training == load_preset("vu2018_fast").training  # two levels up, as vu2018_small_seeds reads it
    assert a.groups == load_preset("vu2018").groups
    (tmp_path / "b.toml").write_text('inherit = "a.toml"\nname = "b"\n')
    with pytest.raises(ConfigError, match="inherits itself"):
        load_preset(str(tmp_path / "a.toml"))
