"""`bench inside` on tiny models: PGD moves the network far more than noise of the same radius."""

from __future__ import annotations

from click.testing import CliRunner

from bench.cli import main
from tests.conftest import tiny_preset


def _rows(report: str, prefix: str) -> dict[str, list[str]]:
    rows = {}
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells and cells[0].startswith(prefix):
            rows[cells[0]] = cells[1:]
    return rows


def test_inside_report_pgd_against_noise(tmp_path):
    preset = tiny_preset(tmp_path, ["O:SOFTMAX:CE", "R:TANH:MSE"], "pgd")
    args = ["inside", "--dataset", "mnist", "--preset", str(preset), "--n-samples", "30", "--no-progress"]
    result = CliRunner().invoke(main, [*args, "--reports-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = (tmp_path / "mnist" / "inside.md").read_text()
    change = _rows(report, "O:SOFTMAX:CE (")
    pgd, noise = change["O:SOFTMAX:CE (pgd)"], change["O:SOFTMAX:CE (noise)"]
    assert float(pgd[0]) < 0.2 < float(noise[0])  # accuracy: PGD at eps 0.3 breaks the model, noise does not
    assert float(pgd[-1]) > 2 * float(noise[-1])  # the scores move far more under PGD than under noise
    ranks = _rows(report, "R:TANH:MSE")["R:TANH:MSE"]
    assert len(ranks) == 10 and abs(sum(map(float, ranks)) - 1) < 0.01
    for png in ("inside_relative_change.png", "inside_rank_change_pgd.png"):
        assert (tmp_path / "mnist" / "plots" / png).stat().st_size > 1000
