import json
import pickle

import pytest
import torch

from bench.errors import StoreError
from models import zoo
from models.inference import predict_scores
from models.spec import TrainConfig, make_spec
from models.store import META, WEIGHTS, ModelStore
from models.training import train_model

MICRO = TrainConfig(epochs=1, n_train=256, batch_size=64)


@pytest.fixture()
def trained(mnist_test):
    spec = make_spec("mnist", "R:TANH:MSE", "cnn", MICRO)
    train = mnist_test.subset(256, seed=0)
    return spec, train_model(spec, train, mnist_test.subset(100, seed=1), progress=False)


def test_round_trip_keeps_predictions_and_metadata(tmp_path, trained, mnist_small):
    spec, model = trained
    store = ModelStore(tmp_path)
    store.save(spec, model, (1, 28, 28), 10, "cpu")
    loaded = store.load(spec)
    assert torch.equal(predict_scores(loaded.network, mnist_small.x), predict_scores(model.network, mnist_small.x))
    assert loaded.meta["clean_accuracy"] == model.clean_accuracy
    assert loaded.meta["spec"] == spec.to_dict()
    assert {"torch", "adversarial-robustness-toolbox"} <= set(loaded.meta["versions"])
    assert [m["key"] for m in store.list()] == [spec.key()]


def test_a_checkpoint_with_another_configuration_is_refused(tmp_path, trained):
    spec, model = trained
    store = ModelStore(tmp_path)
    folder = store.save(spec, model, (1, 28, 28), 10, "cpu")
    meta = json.loads((folder / META).read_text())
    meta["spec"]["train"]["epochs"] = 99
    (folder / META).write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="different configuration"):
        store.load(spec)


class _Boom:
    def __reduce__(self):
        return (exec, ("raise SystemExit('unpickled!')",))


def test_a_pickle_in_place_of_the_weights_is_refused_not_run(tmp_path, trained):
    spec, model = trained
    store = ModelStore(tmp_path)
    folder = store.save(spec, model, (1, 28, 28), 10, "cpu")
    (folder / WEIGHTS).write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(StoreError, match="unreadable"):
        store.load(spec)


def test_an_interrupted_save_leaves_no_entry(tmp_path, trained, monkeypatch):
    spec, model = trained
    store = ModelStore(tmp_path)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("models.store.save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        store.save(spec, model, (1, 28, 28), 10, "cpu")
    assert not store.has(spec)
    assert list(tmp_path.iterdir()) == []


def test_obtain_trains_only_what_is_missing(tmp_path, monkeypatch):
    spec = make_spec("mnist", "hinge", "cnn", MICRO)
    store = ModelStore(tmp_path)
    first = zoo.obtain(spec, store, progress=False)
    assert first.meta["n_test"] == 10000

    def no_training(*args, **kwargs):
        raise AssertionError("obtain() trained a model that the store holds")

    monkeypatch.setattr(zoo, "train_model", no_training)
    again = zoo.obtain(spec, store, progress=False)
    assert again.meta["key"] == first.meta["key"]
