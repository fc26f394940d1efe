"""A plugin for a quick try, no package: `--plugin file.py` registers the file's model kinds, and
`--plugin file.py:name` one object (here a bare loss, which becomes a model kind with a linear head)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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


KIND_FILE = """
from models.kinds import ModelKind, linear_head
from models.losses import cross_entropy

SCORES_ONLY = ModelKind("scores_only", "cross-entropy, no raw view", "logits", linear_head, cross_entropy,
                        views=("scores",))
"""


def test_an_attack_needing_a_view_the_kind_lacks_is_refused_before_work(bench_cli, tmp_path):
    (tmp_path / "kind.py").write_text(KIND_FILE)
    preset = tmp_path / "p.toml"
    preset.write_text(
        'name = "p"\nmodels = ["scores_only"]\n[samples]\ncw_l2 = 5\n[[group]]\ntables = []\n'
        'setting = "whitebox_targeted"\nattack = "cw_l2"\nsweep = { c = [0.1] }\n'
    )
    done = bench_cli("--plugin", "kind.py", "matrix", "--dataset", "mnist", "--preset", str(preset), "--dry-run",
                     check=False)  # fmt: skip
    assert done.returncode == 2
    assert "attack 'cw_l2' needs the model's 'raw' view, and scores_only offers scores" in done.stderr


def test_a_kind_parameter_from_the_command_line_is_checked_by_the_kind(bench_cli, tmp_path):
    plugin = tmp_path / "focal.py"
    plugin.write_text((Path(__file__).parent / "plugin_pkg" / "bench_focal" / "__init__.py").read_text())
    bad = bench_cli("--plugin", "focal.py", "train", "--dataset", "mnist", "--model", "focal", "--param", "gamma=-1",
                    check=False)  # fmt: skip
    assert bad.returncode == 2 and "focal gamma=-1.0 must be at least 0." in bad.stderr
    typo = bench_cli("--plugin", "focal.py", "train", "--dataset", "mnist", "--model", "focal", "--param", "gama=1",
                     check=False)  # fmt: skip
    assert typo.returncode == 2 and "model 'focal' has no parameter 'gama'; expected: gamma." in typo.stderr
    form = bench_cli("train", "--dataset", "mnist", "--model", "ce", "--param", "gamma", check=False)
    assert form.returncode == 2 and "--param 'gamma': expected NAME=NUMBER" in form.stderr
