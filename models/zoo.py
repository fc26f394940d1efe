"""Take a model from the store, training it first only if it is missing."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from bench.data import datasets
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
    """The stored model for ``spec``; trains and stores it when missing (or when ``force``)."""
    store = store or ModelStore()
    if store.has(spec) and not force:
        return store.load(spec)
    log.info("training %s (store key %s)", spec.name, spec.key())
    train = datasets.load(spec.dataset, "train", data_dir).subset(spec.train.n_train, spec.train.seed)
    test = datasets.load(spec.dataset, "test", data_dir)
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
