"""A real plugin package (tests/plugin_pkg: a focal-loss model kind, a random-sign attack, a preset), installed
with pip and used through the command line as a user would: listed, trained, attacked, reported and gated
like the built-ins, with did-you-mean errors, and a key that changes when its loss is edited.

Also the user's CI: the README's lines run as written; a rerun passes, a weakened model fails with its cells named.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_api import readme_block

PACKAGE = Path(__file__).parent / "plugin_pkg"


def _install(source: Path, site: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--upgrade",
         "--target", str(site), str(source)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    """A copy of the plugin package installed into its own site folder, and a shell for the user's commands."""
    root = tmp_path_factory.mktemp("plugin_user")
    source = root / "plugin_pkg"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = root / "site"
    _install(source, site)
    env = {**os.environ, "PYTHONPATH": str(site), "BENCH_HOME": str(root / "home")}
    env.pop("BENCH_PLUGINS", None)

    def run(command: str, check: bool = True, **more_env: str) -> subprocess.CompletedProcess:
        bench = [sys.executable, "-m", "bench"]
        argv = bench + command.split()[1:] if command.startswith("bench ") else command.split()
        done = subprocess.run(argv, cwd=root, env={**env, **more_env}, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise AssertionError(f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    return {"root": root, "source": source, "site": site, "run": run, "env": env}


def test_listed_with_its_origin(user):
    models = user["run"]("bench ls models").stdout
    assert re.search(r"^focal\s+plugin bench-focal-plugin 0\.1\.0\s+logits\s+focal_loss\s+gamma=2", models, re.M)
    attacks = user["run"]("bench ls attacks").stdout
    assert re.search(r"^random_sign\s+plugin bench-focal-plugin", attacks, re.M)
    assert re.search(
        r"^focal_quick\s+plugin bench-focal-plugin 0\.1\.0\s", user["run"]("bench ls presets").stdout, re.M
    )


def test_plugin_names_get_did_you_mean(user):
    done = user["run"]("bench train --dataset mnist --model focall", check=False)
    assert done.returncode == 2
    assert "unknown model 'focall'" in done.stderr and "Did you mean 'focal'?" in done.stderr
    done = user["run"]("bench matrix --dataset mnist --preset focal_quick --attacks random_sgn --dry-run", check=False)
    assert done.returncode == 2 and "Did you mean 'random_sign'?" in done.stderr


def test_trained_attacked_reported_and_gated(user):
    run, root = user["run"], user["root"]
    run("bench matrix --dataset mnist --preset focal_quick --out run --reports-dir rep --no-progress")
    export = run("bench export --results run --format json --out -").stdout
    rows = json.loads(export)
    focal = {(r["attack"], r["eps"]): r for r in rows if r["model"] == "focal"}
    assert {("fgsm", 0.05), ("fgsm", 0.2), ("random_sign", 0.2)} <= set(focal)
    assert all(r["status"] == "ok" for r in rows)
    # random signs at eps 0.2 move far less than FGSM's loss ascent at the same eps, on the same trained model
    assert focal[("random_sign", 0.2)]["rate"] > focal[("fgsm", 0.2)]["rate"]
    report = (root / "rep" / "mnist" / "README.md").read_text()
    assert "| focal [1 epochs, 2000 training images] (cnn)" in report
    assert re.search(r"^\| focal\s+\| 0\.2 ", report, re.M)  # in the robustness section beside the zoo model
    run("bench baseline --dataset mnist --preset focal_quick --results run --out base.json --no-progress")
    gate = run("bench check --dataset mnist --preset focal_quick --results run --baseline base.json")
    assert "0 drifted" in gate.stdout and "gate passed" in gate.stdout
    baseline = json.loads((root / "base.json").read_text())
    assert baseline["versions"]["plugin bench-focal-plugin"] == "0.1.0"  # the user's project is recorded


KEY = "from bench.plugins import load_plugins; load_plugins(); from models.spec import make_spec; "
KEY += "print(make_spec('mnist', 'focal').key())"


CELL = "from bench.plugins import load_plugins; load_plugins(); "
CELL += "from bench.matrix.plan import MatrixOptions, make_plan; "
CELL += "plan = make_plan(MatrixOptions(dataset='mnist', preset='focal_quick')); "
CELL += "print(sorted(c.hash for c in plan.cells if c.attack == 'random_sign'))"


def _key(env: dict[str, str], code: str = KEY) -> str:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_editing_the_loss_changes_the_store_key(user, tmp_path):
    key = _key(user["env"])
    assert re.fullmatch(r"[0-9a-f]{16}\n", key)
    assert _key(user["env"]) == key  # the same code gives the same key
    edited = tmp_path / "edited"
    shutil.copytree(user["source"], edited)
    init = edited / "bench_focal" / "__init__.py"
    init.write_text(init.read_text().replace("return -((1 - log_p.exp()) ** gamma) * log_p", "return -log_p"))
    site = tmp_path / "site"
    _install(edited, site)
    again = _key({**user["env"], "PYTHONPATH": str(site)})
    assert re.fullmatch(r"[0-9a-f]{16}\n", again) and again != key


def test_editing_the_attack_changes_its_cells(user, tmp_path):
    """A plugin attack's cells hash its code: an edited attack runs again instead of reusing old results."""
    cells = _key(user["env"], CELL)
    assert cells.startswith("['") and _key(user["env"], CELL) == cells
    edited = tmp_path / "edited"
    shutil.copytree(user["source"], edited)
    attack = edited / "bench_focal" / "attack.py"
    attack.write_text(attack.read_text().replace("np.random.uniform(-1.0, 1.0", "np.random.uniform(-0.5, 1.0"))
    _install(edited, tmp_path / "site")
    assert _key({**user["env"], "PYTHONPATH": str(tmp_path / "site")}, CELL) != cells


def _ci_lines() -> tuple[str, str]:
    lines = [line.split("  #")[0].strip() for line in readme_block("user-ci", "bash").splitlines() if line.strip()]
    baseline, check = lines
    assert baseline.startswith("bench baseline ") and check.startswith("bench check ")
    return baseline, check


@pytest.mark.slow
def test_the_readme_ci_lines_pass_a_rerun_and_fail_a_weakened_model(user, tmp_path):
    baseline, check = _ci_lines()
    run, root = user["run"], user["root"]
    run(baseline, BENCH_HOME=str(tmp_path / "ci-1"))
    assert (root / "ci" / "bench-baseline.json").is_file()
    rerun = run(check, BENCH_HOME=str(tmp_path / "ci-2"))  # a fresh machine: trains again, same seed
    assert "gate passed" in rerun.stdout and "0 drifted" in rerun.stdout
    weakened = tmp_path / "weakened"
    shutil.copytree(user["source"], weakened)
    init = weakened / "bench_focal" / "__init__.py"  # a loss that no longer trains: the model stays at chance
    init.write_text(init.read_text().replace("return -((1 - log_p.exp()) ** gamma) * log_p", "return 0.0 * log_p"))
    _install(weakened, tmp_path / "site")
    failed = run(check, check=False, BENCH_HOME=str(tmp_path / "ci-3"), PYTHONPATH=str(tmp_path / "site"))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    drifted = [line for line in failed.stdout.splitlines() if "| drifted (code changed) |" in line]
    assert drifted and all("/focal |" in line for line in drifted)  # the focal cells are named; CE's are not
    assert "gate FAILED" in failed.stdout
