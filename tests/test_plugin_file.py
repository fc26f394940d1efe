"""A plugin for a quick try, no package: `--plugin file.py` registers the file's model kinds, and
`--plugin file.py:name` one object (here a bare loss, which becomes a model kind with a linear head)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

LOSS_FILE = '''
import torch
import torch.nn.functional as F

__version__ = "0.3"


def squared_hinge(scores, y):
    """multi-class squared hinge loss on the logits"""
    true = scores.gather(1, y[:, None])
    others = 1.0 - F.one_hot(y, scores.shape[1]).to(scores.dtype)
    return ((scores - true + 1.0).clamp_min(0.0) ** 2 * others).sum(dim=1)
'''


@pytest.fixture()
def bench_cli(tmp_path):
    env = {**os.environ, "BENCH_HOME": str(tmp_path / "home")}
    env.pop("BENCH_PLUGINS", None)

    def run(*args: str, check: bool = True, **more_env: str) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "bench", *args]
        done = subprocess.run(argv, env={**env, **more_env}, capture_output=True, text=True, cwd=tmp_path)
        assert not check or done.returncode == 0, done.stdout + done.stderr
        return done

    return run


def test_a_loss_in_a_file_trains_and_is_listed(bench_cli, tmp_path):
    plugin = tmp_path / "my_loss.py"
    plugin.write_text(LOSS_FILE)
    listed = bench_cli("--plugin", f"{plugin}:squared_hinge", "ls", "models").stdout
    assert "plugin my_loss.py:squared_hinge 0.3" in listed  # the file's name, not the path it was typed with
    # the same plugin typed two ways (relative on the command line, absolute in BENCH_PLUGINS) loads once
    twice = bench_cli("--plugin", "my_loss.py:squared_hinge", "ls", "models", BENCH_PLUGINS=f"{plugin}:squared_hinge")
    assert twice.stdout == listed
    args = ["--plugin", f"{plugin}:squared_hinge", "train", "--dataset", "mnist", "--model", "squared_hinge"]
    trained = bench_cli(*args, "--epochs", "1", "--n-train", "1000", "--no-progress").stdout
    accuracy = float(trained.split("mnist/cnn/squared_hinge")[1].split("%")[0])
    assert accuracy > 50  # it learnt: 1,000 images, one epoch, the plugin's loss on the Table I CNN
    stored = [p for p in (tmp_path / "home" / "models").iterdir() if not p.name.startswith(".")]
    (meta,) = [json.loads((p / "meta.json").read_text()) for p in stored]
    assert meta["spec"]["model"] == "squared_hinge" and meta["spec"]["plugin"]["version"] == "0.3"


def test_without_the_plugin_the_name_is_unknown_and_a_bad_path_is_named(bench_cli, tmp_path):
    unknown = bench_cli("train", "--dataset", "mnist", "--model", "squared_hinge", check=False)
    assert unknown.returncode == 2 and "unknown model 'squared_hinge'" in unknown.stderr
    missing = bench_cli("--plugin", str(tmp_path / "nope.py"), "ls", check=False)
    assert missing.returncode == 2 and "nope.py" in missing.stderr and "no such file" in missing.stderr
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    nothing = bench_cli("--plugin", str(empty), "ls", check=False)
    assert nothing.returncode == 2 and "defines no ModelKind, AttackFamily or PRESETS" in nothing.stderr


def test_a_plugin_that_raises_is_named_in_one_line(bench_cli, tmp_path):
    (tmp_path / "bad.py").write_text("import not_a_module_anywhere\n")
    done = bench_cli("--plugin", "bad.py", "ls", check=False)
    assert done.returncode == 2 and "--plugin 'bad.py' failed to load: ModuleNotFoundError" in done.stderr
    assert "Traceback" not in done.stderr
