"""Slow tests: full-size data. Run with `pytest -m slow` (CI runs them after the fast suite)."""

from pathlib import Path

import pytest

from bench.data import datasets
from models.spec import TrainConfig, make_spec
from models.zoo import obtain

pytestmark = pytest.mark.slow


def test_one_epoch_of_the_table_i_cnn_reaches_98_5_percent_on_all_mnist_test_images(store):
    stored = obtain(make_spec("mnist", "O:SOFTMAX:CE", "cnn", TrainConfig(epochs=1)), store, progress=False)
    assert stored.meta["n_test"] == 10000
    assert stored.meta["clean_accuracy"] >= 0.985


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="dataset-fashion-mnist missing")
def test_fashion_mnist_from_the_debian_package():
    split = datasets.load("fashion_mnist", "train")
    assert split.x.shape == (60000, 1, 28, 28)
    assert split.y.bincount().tolist() == [6000] * 10
