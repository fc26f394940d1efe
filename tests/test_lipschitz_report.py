"""`bench lipschitz` writes a table per model from the store, with bounds that hold for the layers as run."""

from __future__ import annotations

from click.testing import CliRunner

from bench.cli import main

PRESET = """
name = "tiny-lipschitz"
models = ["O:SOFTMAX:CE", "O:SOFTMAX:MSE"]
[training]
epochs = 2
n_train = 3000
[samples]
fgsm = 10
[[group]]
tables = []
setting = "whitebox_untargeted"
attack = "fgsm"
sweep = { eps = [0.1] }
"""


def test_lipschitz_report_for_the_stored_models(tmp_path):  # trains the two tiny models where missing
    preset = tmp_path / "tiny.toml"
    preset.write_text(PRESET)
    args = ["lipschitz", "--dataset", "mnist", "--preset", str(preset), "--reports-dir", str(tmp_path), "--no-progress"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = (tmp_path / "mnist" / "lipschitz.md").read_text()
    assert "## O:SOFTMAX:CE" in report and "## O:SOFTMAX:MSE" in report
    assert report.count("backbone.conv2") == 2 and "FFT at 18x18" in report
    assert (tmp_path / "mnist" / "plots" / "lipschitz_conv.png").stat().st_size > 1000
    gaps = [line.split("|")[7].strip() for line in report.splitlines() if "backbone.conv" in line]
    assert all(g.startswith("+") for g in gaps)  # the bound is never below the layer's own norm
