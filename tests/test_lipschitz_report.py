"""`bench lipschitz` writes a table per model from the store, with bounds that hold for the layers as run."""

from __future__ import annotations

from click.testing import CliRunner

from bench.cli import main
from tests.conftest import tiny_preset


def test_lipschitz_report_for_the_stored_models(tmp_path):  # trains the two tiny models where missing
    preset = tiny_preset(tmp_path, ["O:SOFTMAX:CE", "O:SOFTMAX:MSE"], "fgsm")
    args = ["lipschitz", "--dataset", "mnist", "--preset", str(preset), "--reports-dir", str(tmp_path), "--no-progress"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = (tmp_path / "mnist" / "lipschitz.md").read_text()
    assert "## O:SOFTMAX:CE" in report and "## O:SOFTMAX:MSE" in report
    assert report.count("backbone.conv2") == 2 and "FFT at 18x18" in report
    assert (tmp_path / "mnist" / "plots" / "lipschitz_conv.png").stat().st_size > 1000
    gaps = [line.split("|")[7].strip() for line in report.splitlines() if "backbone.conv" in line]
    assert all(g.startswith("+") for g in gaps)  # the bound is never below the layer's own norm
