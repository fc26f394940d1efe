"""Attack parameters that take a word (L-BFGS's solver): from a preset to the cell, its hash, the attack built and
the results frame; a wrong word is refused naming the value and the words allowed."""

from __future__ import annotations

import pytest

import attacks_ext.lbfgs
from bench.attacks import ATTACKS
from bench.errors import ConfigError
from bench.matrix.plan import MatrixOptions, make_plan
from bench.matrix.runner import MatrixRunner
from bench.reports.tables import timing_rows
from bench.results.frame import results_frame
from bench.results.store import ResultsStore, read_records
from tests.conftest import preset_text

GROUP = {"setting": "whitebox_targeted", "attack": "lbfgs", "sweep": {"c": [1.0, 10.0]}}


def _plan(tmp_path, params: dict):
    path = tmp_path / "words.toml"
    path.write_text(preset_text("words", ["O:SOFTMAX:CE"], {"lbfgs": 4}, [GROUP], seed=0, params={"lbfgs": params}))
    options = MatrixOptions(dataset="mnist", preset=str(path), progress=False)
    return options, make_plan(options)


def test_a_word_parameter_reaches_the_cell_and_changes_its_hash_unless_it_is_the_default(tmp_path):
    small = {"max_iter": 5, "binary_search_steps": 1}
    unset, default = _plan(tmp_path, small)[1], _plan(tmp_path, {**small, "solver": "scipy"})[1]
    torch = _plan(tmp_path, {**small, "solver": "torch"})[1]
    assert all(dict(c.params)["solver"] == "torch" for c in torch.cells) and len(torch.cells) == 2
    assert [c.hash for c in default.cells] == [c.hash for c in unset.cells]  # naming the default is leaving it out
    assert not {c.hash for c in torch.cells} & {c.hash for c in unset.cells}


def test_the_attack_built_from_a_cell_takes_its_word(tmp_path, ce):
    _, plan = _plan(tmp_path, {"solver": "torch"})
    attack = ATTACKS.get("lbfgs").make(ce, dict(plan.cells[0].params), True, 8)
    assert attack.solver == "torch"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"solver": "newton"}, r"words.toml: params.lbfgs.solver = 'newton'; expected one of 'scipy', 'torch'"),
        ({"solver": 2}, r"params.lbfgs.solver = 2; expected one of 'scipy', 'torch'"),
        ({"max_iter": "many"}, r"params.lbfgs.max_iter = 'many'; expected a finite number \(lbfgs takes a word only"),
        ({"solver": True}, r"params.lbfgs.solver = True; expected one of 'scipy', 'torch'"),
    ],
)
def test_a_wrong_word_or_a_word_for_a_number_is_refused(tmp_path, params, expected):
    with pytest.raises(ConfigError, match=expected):
        _plan(tmp_path, params)


def test_a_run_crafts_with_the_word_records_it_and_the_frame_keeps_it_as_text(tmp_path, monkeypatch):
    solved_with_torch = []
    solve = attacks_ext.lbfgs.LBFGSAttack._solve_with_torch

    def spied(self, x_all, *args):
        solved_with_torch.append(len(x_all))
        return solve(self, x_all, *args)

    monkeypatch.setattr(attacks_ext.lbfgs.LBFGSAttack, "_solve_with_torch", spied)
    options, plan = _plan(tmp_path, {"max_iter": 5, "binary_search_steps": 1, "solver": "torch"})
    MatrixRunner(options, ResultsStore(tmp_path / "results.sqlite"), tmp_path).run(plan)
    assert solved_with_torch == [8]  # the sweep's two cells of 4 images, in one call
    frame = results_frame(tmp_path)
    lbfgs = frame[frame.attack == "lbfgs"]
    assert lbfgs.solver.tolist() == ["torch", "torch"] and frame.solver.dtype == "string"
    assert lbfgs.status.tolist() == ["ok", "ok"]
    (row,) = timing_rows(read_records(tmp_path / "results.sqlite"))  # its own row, apart from SciPy's cells
    assert row["attack"] == "lbfgs solver=torch" and row["cells crafted"] == 2
