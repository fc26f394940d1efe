"""A tiny vu2018-style run end to end: PGD adversarial training from a preset, Table II and the Table III
transfer matrix, with vu2018's published numbers for adversarially trained models beside ours."""

from __future__ import annotations

from click.testing import CliRunner

from bench.cli import main
from bench.results.store import ResultsStore

PRESET = """
name = "tiny-vu2018"
models = ["O:SOFTMAX:CE", "hinge"]
[training]
epochs = 1
n_train = 600
[training.adversarial]
eps = 0.3
eps_step = 0.1
max_iter = 3
[samples]
pgd = 30
[[group]]
tables = ["vu2018:II"]
setting = "whitebox_untargeted"
attack = "pgd"
params = { eps_step = 0.1, max_iter = 5 }
sweep = { eps = [0.3] }
[[group]]
tables = ["vu2018:III"]
setting = "transfer"
attack = "pgd"
transfer_matrix = true
params = { eps_step = 0.1, max_iter = 5 }
sweep = { eps = [0.3] }
"""


def test_adversarially_trained_models_get_tables_ii_and_iii(tmp_path):
    preset = tmp_path / "vu.toml"
    preset.write_text(PRESET)
    out, reports = tmp_path / "store", tmp_path / "reports"
    args = ["matrix", "--dataset", "mnist", "--preset", str(preset), "--no-progress"]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--reports-dir", str(reports)])
    assert result.exit_code == 0, result.output
    records = ResultsStore(out / "results.sqlite").records()
    pairs = {(r.source, r.model) for r in records if r.setting == "transfer"}
    assert pairs == {(s, t) for s in ("O:SOFTMAX:CE", "hinge") for t in ("O:SOFTMAX:CE", "hinge")}
    # the diagonal of the transfer matrix is the white-box attack: the same examples, the same accuracy
    white = {r.model: r.rate for r in records if r.setting == "whitebox_untargeted"}
    diagonal = {r.model: r.rate for r in records if r.setting == "transfer" and r.source == r.model}
    assert white == diagonal
    report = (reports / "mnist" / "README.md").read_text()
    assert "vu2018 Table II" in report and "vu2018 Table III" in report
    # the training actually run, beside its number: 600 images in batches of 128 are 5 steps
    assert "[PGD k=3, step 0.1, eps 0.3 adversarial training; 5 steps of batch 128]" in report
    clean = next(line for line in report.splitlines() if line.startswith("| hinge [1 epochs"))
    assert clean.split("|")[4].strip() == "0.91"  # clean accuracy of vu2018's adversarially trained hinge model
    row = next(line for line in report.splitlines() if line.startswith("| O:SOFTMAX:CE → hinge"))
    assert "(0.855)" in row  # Table III: crafted on cross-entropy, evaluated on hinge
    assert f"--out {out}" in report  # the regenerating command reads the same store
    # the training run, with its curve: 5 steps make one window, whose accuracy is the epoch's
    training = report.split("### The adversarial training actually run")[1].split("###")[0]
    hinge = next(line for line in training.splitlines() if line.startswith("| hinge"))
    assert "5 x 128" in hinge and "Adam 0.001, cosine" in hinge
    from models.store import ModelStore

    meta = next(m for m in ModelStore().list() if m["name"] == "mnist/cnn+pgd_at/hinge")
    assert meta["curve"] == [{"step": 5, **{k: meta["history"][0][k] for k in ("loss", "train_accuracy")}}]
    assert (reports / "mnist" / "plots" / "training_curve.png").is_file()
