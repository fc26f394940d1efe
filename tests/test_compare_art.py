"""`bench compare-art` on a tiny model: our estimator and ART's stock classifier agree where they must."""

from __future__ import annotations

from click.testing import CliRunner

from bench.cli import main
from tests.conftest import tiny_preset


def _value(report: str, label: str) -> list[str]:
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == label or cells[0].startswith(label + " "):
            return cells[1:]
    raise AssertionError(f"no row {label!r} in the report")


def test_compare_art_report(tmp_path):
    preset = tiny_preset(tmp_path, ["O:SOFTMAX:CE"], "fgsm")
    args = ["compare-art", "--dataset", "mnist", "--preset", str(preset), "--n-samples", "40", "--no-progress"]
    args += ["--cw-samples", "4", "--cw-iterations", "20", "--cw-searches", "1", "--reports-dir", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = (tmp_path / "mnist" / "compare_art.md").read_text()
    assert float(_value(report, "same decision")[0]) == 1.0
    assert float(_value(report, "largest absolute score difference")[0]) < 1e-5
    assert float(_value(report, "gradient difference, largest absolute, relative")[0]) < 1e-4  # ART's mean x N
    for attack in ("fgsm", "pgd"):
        ours, stock, diff = _value(report, attack)[:3]
        assert ours == stock and float(diff) < 1e-5  # sign attacks: the same examples from either estimator
    for name in ("cw_l2", "cw_l2_codeword", "cw_l2_art", "PGD, ART NumPy path", "PGD, ART PyTorch path"):
        success = float(_value(report, name)[0])
        assert 0.0 <= success <= 1.0
    numpy_path, torch_path = (float(_value(report, f"PGD, ART {p} path")[0]) for p in ("NumPy", "PyTorch"))
    assert abs(numpy_path - torch_path) <= 0.15  # two implementations of one attack, 40 images
