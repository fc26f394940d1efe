"""Attack parameters that take a word (L-BFGS's solver): from a preset to the cell, its hash, the attack built and
the results frame; a wrong word is refused naming the value and the words allowed."""

from __future__ import annotations

import pytest

from bench.attacks import ATTACKS
from bench.errors import ConfigError
from bench.matrix.plan import MatrixOptions, make_plan
from bench.matrix.runner import MatrixRunner
from bench.results.frame import results_frame
from bench.results.store import ResultsStore
from tests.conftest import preset_text

GROUP = {"setting": "whitebox_targeted", "attack": "lbfgs", "sweep": {"c": [10.0]}}


def _plan(tmp_path, params: dict):
    path = tmp_path / "words.toml"
    path.write_text(preset_text("words", ["O:SOFTMAX:CE"], {"lbfgs": 4}, [GROUP], seed=0, params={"lbfgs": params}))
    options = MatrixOptions(dataset="mnist", preset=str(path), progress=False)
    return options, make_plan(options)


def test_a_word_parameter_reaches_the_cell_and_changes_its_hash(tmp_path):
    small = {"max_iter": 5, "binary_search_steps": 1}
    (_, scipy), (_, torch) = _plan(tmp_path, small), _plan(tmp_path, {**small, "solver": "torch"})
    assert dict(torch.cells[0].params)["solver"] == "torch" and "solver" not in dict(scipy.cells[0].params)
    assert torch.cells[0].hash != scipy.cells[0].hash


def test_the_attack_built_from_a_cell_takes_its_word(tmp_path, ce):
    _, plan = _plan(tmp_path, {"solver": "torch"})
    attack = ATTACKS.get("lbfgs").make(ce, dict(plan.cells[0].params), True, 8)
    assert attack.solver == "torch"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"solver": "newton"}, r"lbfgs solver='newton' is not one of 'scipy', 'torch'"),
        ({"solver": 2}, r"lbfgs solver=2 is not one of 'scipy', 'torch'"),
        ({"max_iter": "many"}, r"lbfgs max_iter='many' is not a number; expected one in \[1, "),
        ({"solver": True}, r"lbfgs.solver = True; expected a finite number, or a word"),
    ],
)
def test_a_wrong_word_or_a_word_for_a_number_is_refused(tmp_path, params, expected):
    with pytest.raises(ConfigError, match=expected):
        _plan(tmp_path, params)


def test_a_run_records_the_word_and_the_frame_keeps_it_as_text(tmp_path):
    options, plan = _plan(tmp_path, {"max_iter": 5, "binary_search_steps": 1, "solver": "torch"})
    MatrixRunner(options, ResultsStore(tmp_path / "results.sqlite"), tmp_path).run(plan)
    frame = results_frame(tmp_path)
    lbfgs = frame[frame.attack == "lbfgs"]
    assert len(lbfgs) == 1 and lbfgs.solver.tolist() == ["torch"] and frame.solver.dtype == "string"
    assert lbfgs.status.tolist() == ["ok"]
