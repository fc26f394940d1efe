"""Bad inputs end in one line that names the value and what was expected (exit status 2), never a traceback, and
before any work: presets refused against their one schema, command-line values out of range."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bench.cli import main

HEAD = 'name = "t"\nmodels = ["O:SOFTMAX:CE", "hinge"]\n[training]\nepochs = 1\n[samples]\nfgsm = 10\n'
GROUP = '[[group]]\nsetting = "whitebox_untargeted"\nattack = "fgsm"\n'
GOOD = HEAD + GROUP + "sweep = { eps = [0.1] }\n"


def one_line(result, status: int = 2) -> str:
    """The command's message, asserting it is one line, not a traceback, with the exit status expected."""
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (TypeError, AttributeError))
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def no_work(monkeypatch):
    """Any training or attack started by a refused command fails the test."""

    def refuse(*a, **k):
        raise AssertionError("work started despite a bad input")

    monkeypatch.setattr("models.zoo.train_model", refuse)
    monkeypatch.setattr("bench.matrix.execute.MatrixRunner.run", refuse)
    monkeypatch.setattr("bench.matrix.execute.estimate_run", refuse)


PRESETS = [
    # (what is wrong, preset text, the message expected)
    ("unknown group key", GOOD + "restrats = 4\n", "unknown key 'restrats' in [[group]] 1; expected one of: tables"),
    ("unknown top key", "diagnostic_sample = 3\n" + GOOD, "Did you mean 'diagnostic_samples'?"),
    ("unknown training key", GOOD.replace("epochs", "epoch"), "unknown key 'epoch' in [training]"),
    ("TOML syntax", HEAD + GROUP + "sweep = { eps = [0.1 }\n", "is not valid TOML: Unclosed array"),
    ("table twice", HEAD + "[samples]\nbim = 3\n" + GROUP + "sweep = { eps = [0.1] }\n", "Cannot declare"),
    ("sweep a list", HEAD + GROUP + "sweep = [0.1]\n", "sweep = [0.1]; expected one parameter and a non-empty"),
    ("sweep a string", HEAD + GROUP + 'sweep = "eps"\n', "sweep = 'eps'; expected one parameter"),
    ("sweep a scalar", HEAD + GROUP + "sweep = { eps = 0.1 }\n", "sweep = {'eps': 0.1}; expected one parameter"),
    ("sweep strings", HEAD + GROUP + 'sweep = { eps = ["a", "b"] }\n', "sweep = {'eps': ['a', 'b']}; expected"),
    ("sweep empty", HEAD + GROUP + "sweep = {}\n", "sweep = {}; expected one parameter"),
    ("sweep no values", HEAD + GROUP + "sweep = { eps = [] }\n", "sweep = {'eps': []}; expected"),
    ("two sweeps", HEAD + GROUP + "sweep = { eps = [0.1], c = [1] }\n", "expected one parameter"),
    ("samples a word", GOOD.replace("fgsm = 10", 'fgsm = "ten"'), "samples.fgsm = 'ten'; expected a whole number"),
    ("samples a fraction", GOOD.replace("fgsm = 10", "fgsm = 10.7"), "samples.fgsm = 10.7; expected a whole number"),
    ("seed a word", 'seed = "abc"\n' + GOOD, "seed = 'abc'; expected a whole number >= 0"),
    ("[group] for [[group]]", GOOD.replace("[[group]]", "[group]"), "'group' is a single table; expected an array"),
    ("no models", GOOD.replace('["O:SOFTMAX:CE", "hinge"]', "[]"), "models = []; expected a non-empty list"),
    ("diagnostics 0", "diagnostic_samples = 0\n" + GOOD, "diagnostic_samples = 0; expected a whole number >= 1"),
    ("no group", HEAD, "lacks group; a preset needs name, models, samples, group"),
    ("empty group list", HEAD.replace("[training]", "group = []\n[training]"), "group = []; expected at least one"),
    ("group lacks attack", HEAD + '[[group]]\nsetting = "transfer"\nsweep = { eps = [0.1] }\n', "lacks attack"),
    ("param a word", GOOD + 'params = { eps = "x" }\n', "[[group]] 1 params.eps = 'x'; expected a finite number"),
    (
        "param out of range",
        GOOD.replace("fgsm", "bim") + "params = { eps_step = 2.0 }\n",
        "preset 't', the cells of [[group]] 1: bim eps_step=2.0 is outside [0.0, 1.0]",
    ),
    ("param a list", GOOD + "params = { eps_step = [1] }\n", "[[group]] 1 params.eps_step = [1]; expected a finite"),
    (
        "unknown transfer source",
        'transfer_source = "nope"\n' + GOOD.replace("whitebox_untargeted", "transfer"),
        "transfer_source names 'nope', which is not one of its models (O:SOFTMAX:CE, hinge)",
    ),
    ("unknown group model", GOOD + 'models = ["hinj"]\n', "names 'hinj', which is not one of its models"),
]


@pytest.mark.parametrize(("text", "expected"), [p[1:] for p in PRESETS], ids=[p[0] for p in PRESETS])
def test_a_bad_preset_is_refused_in_one_line_naming_the_file(tmp_path, no_work, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    line = one_line(invoke("matrix", "--dataset", "mnist", "--preset", str(path), "--no-progress"))
    assert expected in line and ("bad.toml" in line or "preset 't'" in line)


def test_a_preset_that_is_not_utf8_is_refused(tmp_path, no_work):
    path = tmp_path / "bad.toml"
    path.write_bytes(b'name = "\xff\xfe"\n')
    line = one_line(invoke("matrix", "--dataset", "mnist", "--preset", str(path)))
    assert "is not UTF-8 text (byte 0xff at offset 8)" in line


def test_the_packaged_presets_pass_their_schema():
    from bench.matrix.preset import PRESETS as REGISTERED
    from bench.matrix.preset import load_preset

    for name in ("paper", "quick", "vu2018"):
        assert load_preset(name).groups and name in REGISTERED


def test_a_plan_of_no_cells_is_refused(no_work):
    line = one_line(invoke("matrix", "--dataset", "mnist", "--models", "O:SOFTMAX:CE", "--settings", "transfer"))
    assert "the plan has no cells" in line and "besides its source 'O:SOFTMAX:CE'" in line


OPTIONS = [
    # (what is wrong, the command line, the message expected)
    ("batch size 0", ["matrix", "--dataset", "mnist", "--batch-size", "0"], "'--batch-size': 0 is not in the range"),
    ("batch size -1", ["matrix", "--dataset", "mnist", "--batch-size", "-1"], "'--batch-size': -1 is not in the"),
    ("matrix seed -1", ["matrix", "--dataset", "mnist", "--seed", "-1"], "'--seed': -1 is not in the range x>=0"),
    ("inside seed -1", ["inside", "--dataset", "mnist", "--seed", "-1"], "'--seed': -1 is not in the range x>=0"),
    ("train seed -1", ["train", "--dataset", "mnist", "--model", "ce", "--seed", "-1"], "'--seed': -1 is not in"),
    ("empty --n-samples", ["matrix", "--dataset", "mnist", "--n-samples", ""], "--n-samples '': expected N or"),
    ("a stray comma", ["matrix", "--dataset", "mnist", "--n-samples", "pgd=5,"], "--n-samples 'pgd=5,': expected"),
    (
        "more images than the split",
        ["matrix", "--dataset", "mnist", "--n-samples", "20000"],
        "asks for 20000 images (--n-samples or the preset's [samples]); the mnist test split holds 10000",
    ),
    (
        "--pgd-eps without --pgd-at",
        ["train", "--dataset", "mnist", "--model", "ce", "--pgd-eps", "2"],
        "--pgd-eps set PGD adversarial training, which is off; add --pgd-at",
    ),
    (
        "too few training images for every class",
        ["train", "--dataset", "mnist", "--model", "ce", "--n-train", "2", "--no-progress"],
        "n_train=2: the 2 training images hold no image of class(es)",
    ),
]


@pytest.mark.parametrize(("args", "expected"), [o[1:] for o in OPTIONS], ids=[o[0] for o in OPTIONS])
def test_a_bad_option_is_refused_in_one_line_before_work(no_work, args, expected):
    assert expected in one_line(invoke(*args))


def test_a_negative_seed_is_refused_where_images_are_drawn():
    from bench.data.datasets import draw_indices
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match="seed=-1 is not a seed of the image draw; expected a whole number >= 0"):
        draw_indices(100, 10, -1)


def _idx(path, array) -> None:
    """An IDX file of unsigned bytes (the MNIST format) holding ``array``."""
    import numpy as np

    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.tobytes())


def _mnist_dir(folder, labels):
    import numpy as np

    folder.mkdir()
    for prefix, n in (("train", 30), ("t10k", 10)):
        _idx(folder / f"{prefix}-images-idx3-ubyte", np.zeros((n, 28, 28)))
        _idx(folder / f"{prefix}-labels-idx1-ubyte", np.resize(labels, n))
    return folder


DATA_DIRS = [
    # (what is wrong, how the test images file is spoiled, the message expected)
    ("truncated", lambda f: f.write_bytes(f.read_bytes()[:1000]), "holds 1000 bytes; its header (10 x 28 x 28)"),
    ("random bytes", lambda f: f.write_bytes(bytes(range(7, 255))), "is not an IDX file of unsigned bytes"),
    ("empty", lambda f: f.write_bytes(b""), "its first bytes are missing; expected 00000803"),
]


@pytest.mark.parametrize(("spoil", "expected"), [d[1:] for d in DATA_DIRS], ids=[d[0] for d in DATA_DIRS])
def test_a_corrupt_data_dir_names_the_file(tmp_path, no_work, spoil, expected):
    folder = _mnist_dir(tmp_path / "data", list(range(10)))
    spoil(folder / "t10k-images-idx3-ubyte")
    line = one_line(invoke("train", "--dataset", "mnist", "--model", "ce", "--data-dir", str(folder)))
    assert expected in line and "t10k-images-idx3-ubyte" in line


def test_labels_outside_the_datasets_classes_are_refused_before_training(tmp_path, no_work):
    folder = _mnist_dir(tmp_path / "data", [0, 42])
    line = one_line(invoke("train", "--dataset", "mnist", "--model", "ce", "--data-dir", str(folder)))
    assert "the mnist training labels include [42], outside its 10 classes 0..9" in line


BENCHMARK_JSONS = [
    ("not JSON", "{", "is not valid JSON"),
    ("a list", "[]", "has no machine_info object and benchmarks list"),
    ("no stats", '{"machine_info": {}, "benchmarks": [{"name": "x"}]}', "benchmark 0 has no name or no positive"),
    (
        "a word for a median",
        '{"machine_info": {}, "benchmarks": [{"name": "x", "stats": {"median": "a", "min": 1, "max": 1, '
        '"rounds": 1}}]}',
        "benchmark 0 has no name or no positive stats",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [b[1:] for b in BENCHMARK_JSONS], ids=[b[0] for b in BENCHMARK_JSONS])
def test_a_malformed_benchmarks_json_is_refused_in_one_line(tmp_path, text, expected):
    path = tmp_path / "b.json"
    path.write_text(text)
    out = tmp_path / "out.md"
    line = one_line(invoke("benchmarks-report", "--json", str(path), "--out", str(out)))
    assert expected in line and "b.json" in line and not out.exists()


def test_a_run_with_failed_cells_exits_1_saying_how_many(tmp_path, monkeypatch):
    """A run in which cells failed (a corrupt --data-dir, an unreadable cached example) wrote its report, but
    exits 1 with the count: exit 0 passed for a finished run."""
    from bench.matrix.runner import RunSummary

    failed = RunSummary(done=1, failed=[("mnist/a", "DatasetError: x"), ("mnist/b", "StoreError: y")])
    monkeypatch.setattr("bench.matrix.execute.execute", lambda plan, options, out: (failed, None))
    monkeypatch.setattr("bench.reports.dataset.write_report", lambda *a: tmp_path / "report")
    args = ["matrix", "--dataset", "mnist", "--models", "O:SOFTMAX:CE", "--attacks", "fgsm", "--out", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "2 of 3 cells failed" in result.output and "FAILED mnist/a: DatasetError: x" in result.output
