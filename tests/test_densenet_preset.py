"""The densenet preset: saito2019's Tables 3 and 5 and the attacks that know the model, on DenseNet-BC-22."""

from __future__ import annotations

import pytest

import bench
from bench.errors import BenchError


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
