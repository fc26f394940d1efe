"""Take a model from the store, training it first only if it is missing."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from bench.data import datasets
from bench.errors import ConfigError, DatasetError
from models.spec import ModelSpec
from models.store import ModelStore, StoredModel
from models.training import train_model

log = logging.getLogger(__name__)


def obtain(
    spec: ModelSpec,
    store: ModelStore | None = None,
    *,
    data_dir: str | Path | None = None,
    device: str = "cpu",
    codebook_key: str | None = None,
    progress: bool = True,
    force: bool = False,
) -> StoredModel:
    """The stored model for ``spec``; trains and stores it when missing (or when ``force``). A process that finds
    another training it waits for that training and loads its model (``ModelStore.training_lock``)."""
    store = store or ModelStore()
    if store.has(spec) and not force:
        return store.load(spec)
    with store.training_lock(spec):
        if store.has(spec) and not force:  # trained by the process this one waited for
            return store.load(spec)
        return _train(spec, store, data_dir, device, codebook_key, progress, force)


def _train(spec: ModelSpec, store: ModelStore, data_dir, device: str, codebook_key, progress: bool, force: bool):
    log.info("training %s (store key %s)", spec.name, spec.key())
    train = datasets.load(spec.dataset, "train", data_dir).subset(spec.train.n_train, spec.train.seed)
    test = datasets.load(spec.dataset, "test", data_dir)
    _check_classes(spec, train, test)
    resume = store.checkpoint_dir(spec)
    if force:
        shutil.rmtree(resume, ignore_errors=True)  # --force trains from the start
    trained = train_model(
        spec, train, test, device=device, codebook_key=codebook_key, progress=progress, checkpoint_dir=resume
    )
    n_classes = datasets.dataset_info(spec.dataset).n_classes
    store.save(spec, trained, tuple(train.x.shape[1:]), n_classes, device)
    shutil.rmtree(resume, ignore_errors=True)
    return store.load(spec)


def _check_classes(spec: ModelSpec, train: datasets.Split, test: datasets.Split) -> None:
    """The network's outputs are sized from the training labels: a subset that misses a class, or labels outside
    the dataset's classes, would store a network of another size under this dataset's key and break every load."""
    n_classes = datasets.dataset_info(spec.dataset).n_classes
    for split, name in ((train, "training"), (test, "test")):
        outside = sorted({int(v) for v in split.y.unique()} - set(range(n_classes)))
        if outside:
            raise DatasetError(
                f"the {spec.dataset} {name} labels include {outside[:5]}, outside its {n_classes} classes "
                f"0..{n_classes - 1}; the data files are not {spec.dataset}'s (check --data-dir)."
            )
    missing = sorted(set(range(n_classes)) - {int(v) for v in train.y.unique()})
    if missing:
        raise ConfigError(
            f"n_train={spec.train.n_train}: the {len(train)} training images hold no image of class(es) {missing} of "
            f"{spec.dataset}'s {n_classes}; a network must see every class: expected a larger n_train."
        )
