"""Fixtures of the benchmark suite: a fixed batch of real MNIST test images; for `loss_gradient`, one
freshly initialised Table I CNN of every model kind (its cost does not depend on the weights); for the
attacks, a trained O:SOFTMAX:CE model, since attacks stop early (CW's abort, DeepFool's success test) in
ways that depend on what the model has learnt."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.data import datasets
from models.estimator import make_estimator
from models.kinds import built_in_kinds
from models.network import build_network
from models.spec import TrainConfig, make_spec
from models.zoo import obtain

BATCH = 128
SHAPE = (1, 28, 28)


@pytest.fixture(scope="session", autouse=True)
def two_threads():
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def batch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, one-hot labels, one-hot targets) of BATCH MNIST test images, seed 0."""
    test = datasets.load("mnist", "test")
    idx = test.subset_indices(BATCH, 0)
    x, y = test.x[idx], test.y[idx]
    targets = (y + 1) % 10
    return x.numpy(), F.one_hot(y, 10).float().numpy(), F.one_hot(targets, 10).float().numpy()


@pytest.fixture(scope="session")
def estimators():
    """Model kind -> BenchClassifier on an untrained cnn."""
    out = {}
    for name in built_in_kinds():
        torch.manual_seed(0)
        spec = make_spec("mnist", name, "cnn", TrainConfig(epochs=1))
        out[name] = make_estimator(spec, build_network(spec, SHAPE, 10).eval(), SHAPE, 10)
    return out


# A light training (about 20 s here, stored in BENCH_HOME after the first run): about 90% clean accuracy.
ATTACKED = TrainConfig(epochs=2, n_train=3000, seed=0)


@pytest.fixture(scope="session")
def attacked():
    """The BenchClassifier every attack benchmark attacks: O:SOFTMAX:CE trained as ATTACKED says."""
    stored = obtain(make_spec("mnist", "O:SOFTMAX:CE", "cnn", ATTACKED), progress=False)
    return make_estimator(stored.spec, stored.network.eval(), SHAPE, 10)
