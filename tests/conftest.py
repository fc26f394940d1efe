"""Shared fixtures: a private BENCH_HOME, small real MNIST subsets, and tiny trained models of every kind."""

from __future__ import annotations

import pytest

from bench.data.datasets import Split, load
from models.kinds import built_in_kinds
from models.spec import ModelSpec, TrainConfig, make_spec
from models.store import ModelStore, StoredModel
from models.zoo import obtain

TINY_TRAIN = TrainConfig(epochs=2, n_train=3000, seed=0)


@pytest.fixture(scope="session", autouse=True)
def bench_home(tmp_path_factory):
    """Every test writes its store and staged datasets under a temporary BENCH_HOME."""
    home = tmp_path_factory.mktemp("bench_home")
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


def tiny_preset(tmp_path, models: list[str], attack: str = "fgsm", setting: str = "whitebox_untargeted", *more: str):
    """A preset file whose models are the tiny trainings above (2 epochs, 3,000 images), with one cell per
    attack (``attack`` and ``more``) at eps 0.1 on 10 images: for commands that take a preset's models, and
    for small runs."""
    attacks = (attack, *more)
    samples = "".join(f"{a} = 10\n" for a in attacks)
    groups = "".join(
        f'[[group]]\ntables = []\nsetting = "{setting}"\nattack = "{a}"\nsweep = {{ eps = [0.1] }}\n' for a in attacks
    )
    path = tmp_path / "tiny-preset.toml"
    path.write_text(
        f'name = "tiny"\nmodels = {models!r}\n[training]\nepochs = 2\nn_train = 3000\n[samples]\n{samples}{groups}'
    )
    return path
