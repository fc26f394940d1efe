from click.testing import CliRunner

from bench.cli import main


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_help_teaches_the_model_names():
    result = invoke("train", "--help")
    assert result.exit_code == 0
    assert "R:TANH:MSE" in result.output and "lmcl_s10_m0.3" in result.output


def test_unknown_names_exit_2_listing_the_valid_ones():
    result = invoke("train", "--dataset", "mnist", "--model", "O:SOFTMAX:XE")
    assert result.exit_code == 2
    assert "Did you mean 'O:SOFTMAX:CE'?" in result.output
    result = invoke("train", "--dataset", "cifar", "--model", "ce", "--arch", "resnet")
    assert result.exit_code == 2 and "expected one of: cnn, small_cnn, densenet" in result.output


def test_bad_hyperparameters_are_refused_before_any_training(monkeypatch):
    def no_training(*a, **k):
        raise AssertionError("trained despite a bad value")

    monkeypatch.setattr("models.zoo.train_model", no_training)
    result = invoke("train", "--dataset", "mnist", "--model", "ce", "--model", "hinge", "--lr", "-1")
    assert result.exit_code == 2 and "lr=-1.0" in result.output
    result = invoke("train", "--dataset", "mnist", "--model", "all", "--pgd-at", "--pgd-eps", "2")
    assert result.exit_code == 2 and "eps=2.0 is outside [0, 1]" in result.output


def test_train_then_list_then_write_the_report(tmp_path):
    result = invoke(
        "train",
        "--dataset",
        "mnist",
        "--model",
        "softmax_mse",
        "--epochs",
        "1",
        "--n-train",
        "128",
        "--batch-size",
        "64",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert "mnist/cnn/O:SOFTMAX:MSE" in result.output
    listing = invoke("models", "--dataset", "mnist")
    assert "O:SOFTMAX:MSE" in listing.output
    report = tmp_path / "models.md"
    assert invoke("models", "--report", str(report)).exit_code == 0
    text = report.read_text()
    assert "| O:SOFTMAX:MSE" in text and "| mnist" in text and "clean accuracy" in text
