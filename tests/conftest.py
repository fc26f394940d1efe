"""Shared fixtures: a private BENCH_HOME, small real MNIST subsets, and tiny trained models of every kind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from bench.data.datasets import Split, load
from bench.results.leases import stored_status
from models.estimator import make_estimator
from models.kinds import built_in_kinds
from models.spec import ModelSpec, TrainConfig, make_spec
from models.store import ModelStore, StoredModel
from models.zoo import obtain

TINY_TRAIN = TrainConfig(epochs=2, n_train=3000, seed=0)

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one thread per xdist worker, and for the processes a test starts: two workers with two torch threads
    # each on two cores spin against each other and run slower than one worker alone
    os.environ["OMP_NUM_THREADS"] = os.environ["BENCH_TORCH_THREADS"] = "1"
    torch.set_num_threads(1)


def shared_models(tmp_path_factory) -> Path | None:
    """Where the tests' trained models are kept for every xdist worker of this session, and for later sessions when
    BENCH_TEST_MODELS names a folder (CI's slow tests reuse what its fast tests trained). Safe to share: a model's
    key is its whole spec, and the store's training lock lets one process train a model that the others then load."""
    if os.environ.get("BENCH_TEST_MODELS"):
        return Path(os.environ["BENCH_TEST_MODELS"])
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return tmp_path_factory.getbasetemp().parent / "shared-models"
    return None


@pytest.fixture(scope="session", autouse=True)
def bench_home(tmp_path_factory):
    """Every test writes its results and staged datasets under a temporary BENCH_HOME; its model store is shared
    (``shared_models``) where there is more than one worker."""
    home = tmp_path_factory.mktemp("bench_home")
    shared = shared_models(tmp_path_factory)
    if shared is not None:
        shared.mkdir(parents=True, exist_ok=True)
        (home / "models").symlink_to(shared, target_is_directory=True)
    mp = pytest.MonkeyPatch()
    mp.setenv("BENCH_HOME", str(home))
    mp.delenv("BENCH_DATA_DIR", raising=False)
    mp.delenv("BENCH_CODEBOOK_KEY", raising=False)
    yield home
    mp.undo()


@pytest.fixture(scope="session")
def mnist_test() -> Split:
    return load("mnist", "test")


@pytest.fixture(scope="session")
def mnist_small(mnist_test) -> Split:
    return mnist_test.subset(200, seed=1)


@pytest.fixture(scope="session")
def store(bench_home) -> ModelStore:
    return ModelStore(bench_home / "models")


def tiny_spec(model: str, **kwargs) -> ModelSpec:
    return make_spec("mnist", model, "cnn", TINY_TRAIN, **kwargs)


@pytest.fixture(scope="session")
def tiny_models(store) -> dict[str, StoredModel]:
    """Each model kind trained for 2 epochs on 3,000 MNIST images (about 90% clean accuracy)."""
    return {name: obtain(tiny_spec(name), store, progress=False) for name in built_in_kinds()}


@pytest.fixture(scope="module")
def ce(tiny_models):
    """The tiny O:SOFTMAX:CE model as ART's estimator: what the craft tests attack."""
    model = tiny_models["O:SOFTMAX:CE"]
    return make_estimator(model.spec, model.network.eval(), (1, 28, 28), 10)


def _toml(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def preset_text(name: str, models: list[str], samples: dict[str, int], groups: list[dict], **more) -> str:
    """A preset TOML whose models are the tiny trainings (2 epochs, 3,000 images). ``groups`` hold the keys of
    each [[group]] (tables default to none); ``more`` holds top-level keys, and ``params`` per-attack tables."""
    params = more.pop("params", {})
    lines = [f'name = "{name}"', f"models = {_toml(models)}", *(f"{k} = {_toml(v)}" for k, v in more.items())]
    lines += ["[training]", "epochs = 2", "n_train = 3000", "[samples]", *(f"{a} = {n}" for a, n in samples.items())]
    for attack, values in params.items():
        lines += [f"[params.{attack}]", *(f"{k} = {_toml(v)}" for k, v in values.items())]
    for group in groups:
        lines += ["[[group]]", *(f"{k} = {_toml(v)}" for k, v in {"tables": [], **group}.items())]
    return "\n".join(lines) + "\n"


def tiny_preset(tmp_path, models: list[str], attack: str = "fgsm", setting: str = "whitebox_untargeted", *more: str):
    """A preset file whose models are the tiny trainings above (2 epochs, 3,000 images), with one cell per
    attack (``attack`` and ``more``) at eps 0.1 on 10 images: for commands that take a preset's models, and
    for small runs."""
    attacks = (attack, *more)
    groups = [{"setting": setting, "attack": a, "sweep": {"eps": [0.1]}} for a in attacks]
    path = tmp_path / "tiny-preset.toml"
    path.write_text(preset_text("tiny", models, {a: 10 for a in attacks}, groups))
    return path


def made_older(store: Path) -> Path:
    """``store`` (a copy: changed in place) as a bench from before the models table and the columns added since
    schema 1 wrote it, whatever bench wrote the committed stores."""
    import sqlite3
    from contextlib import closing

    from bench.results.schema import ADDED_COLUMNS

    with closing(sqlite3.connect(store)) as db, db:
        db.execute("DROP TABLE IF EXISTS models")
        present = {row[1] for row in db.execute("PRAGMA table_info(results)")}
        for column in ADDED_COLUMNS:
            if column in present:
                db.execute(f"ALTER TABLE results DROP COLUMN {column}")
    return store


def stored_count(db: Path) -> int:
    """Rows in the results store ``db`` now (0 before the run has made it: a store appears with its tables)."""
    return len(stored_status(db)) if db.is_file() else 0
