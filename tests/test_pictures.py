"""Pictures and Figure 1's smallest-eps search: the bisection finds the right grid point, and `bench
pictures` on tiny models writes a report whose smallest eps really puts every image on its target."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

from bench.analyses.pictures import adversarial_grid, smallest_eps_all_success
from bench.cli import main
from tests.conftest import tiny_preset


def _threshold_attack(thresholds: np.ndarray, targets: np.ndarray, calls: list[float]):
    """Image i reaches its target exactly when eps >= thresholds[i]; otherwise it stays on class -1."""

    def attack_at(eps: float):
        calls.append(eps)
        predicted = np.where(eps >= thresholds - 1e-12, targets, -1)
        return np.full((len(targets), 1, 2, 2), eps), predicted

    return attack_at


@pytest.mark.parametrize("worst", [0.01, 0.13, 0.37, 0.99, 1.0])
def test_search_returns_the_grid_point_of_the_hardest_image(worst):
    targets = np.array([3, 1, 4, 1])
    thresholds = np.array([0.0, worst / 2, worst, min(0.05, worst)])
    calls: list[float] = []
    found = smallest_eps_all_success(_threshold_attack(thresholds, targets, calls), targets)
    assert found.eps == pytest.approx(worst)
    assert found.x_adv is not None and found.x_adv.max() == pytest.approx(worst)  # the images from that run
    assert len(calls) <= 8  # bisection, not a sweep over 100 grid points
    assert found.success_at[found.eps] == 1.0


def test_search_says_none_when_even_the_largest_eps_fails():
    targets = np.array([0, 1])
    found = smallest_eps_all_success(_threshold_attack(np.array([0.2, 2.0]), targets, []), targets)
    assert found.eps is None and found.success_at == {1.0: 0.5}


def test_search_refuses_a_bad_grid():
    with pytest.raises(ValueError, match="resolution=0.5, high=0.2"):
        smallest_eps_all_success(lambda e: None, np.array([0]), high=0.2, resolution=0.5)


def test_grid_has_three_rows_per_image():
    x = np.random.default_rng(0).random((5, 1, 28, 28)).astype(np.float32)
    fig = adversarial_grid(x, np.clip(x + 0.1, 0, 1), np.arange(5), np.arange(5)[::-1], "t")
    assert len(fig.axes) == 15
    assert fig.axes[0].get_title() == "0" and fig.axes[10].get_title() == "-> 4"  # row-major: [10] is (2, 0)


def test_pictures_report_on_tiny_models(tmp_path):
    preset = tiny_preset(tmp_path, ["O:SOFTMAX:CE", "R:TANH:MSE"], "pgd")
    args = ["pictures", "--dataset", "mnist", "--preset", str(preset), "--search-samples", "12", "--show", "4"]
    args += ["--cw-iterations", "30", "--cw-searches", "2", "--no-progress", "--reports-dir", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = (tmp_path / "mnist" / "pictures.md").read_text()
    for label in ("O:SOFTMAX:CE", "R:TANH:MSE"):
        row = next(line for line in report.splitlines() if line.startswith(f"| {label} ") and "%" in line)
        eps = float(row.split("|")[2])
        assert 0 < eps <= 1.0
        assert f"{eps:g}: 100%" in row  # the reported eps put every image on its target
    pngs = sorted(p.name for p in (tmp_path / "mnist" / "plots").glob("pictures_*.png"))
    assert len(pngs) == 6 and "pictures_mim_r_tanh_mse.png" in pngs
    assert re.search(r"pgd_min_eps .*\| eps 0\.\d+", report)


def test_pictures_refuses_more_shown_than_searched(tmp_path):
    args = ["pictures", "--dataset", "mnist", "--search-samples", "3", "--show", "5", "--reports-dir", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "--show 5 is more than --search-samples 3" in result.output
