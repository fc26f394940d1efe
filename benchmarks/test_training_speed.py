"""Speed of training (`pytest benchmarks/test_training_speed.py --benchmark-only`): STEPS optimiser steps of the
paper preset's configuration (Table I CNN, batch 128, Adam, cosine schedule) on real MNIST training images,
through `train_model` itself, so the device set-up (channels-last, fused Adam on the CPU) is included.

A round is one epoch of STEPS batches plus the clean accuracy on TEST_IMAGES test images (a few seconds on
a 2-core CPU); multiply the mean by 469 / STEPS for a full MNIST epoch and by 6 epochs x 5 kinds for the
paper preset's training.
"""

from __future__ import annotations

import pytest

from bench.data import datasets
from models.spec import TrainConfig, make_spec
from models.training import train_model

STEPS = 20
BATCH = 128  # the paper preset's (TrainConfig's default)
TEST_IMAGES = 200


@pytest.fixture(scope="module")
def splits():
    train = datasets.load("mnist", "train").subset(STEPS * BATCH, 0)
    return train, datasets.load("mnist", "test").subset(TEST_IMAGES, 1)


@pytest.mark.parametrize("kind", ["O:SOFTMAX:CE", "lmcl"])
def test_training_steps(benchmark, splits, kind):
    benchmark.group = f"training, {STEPS} steps of batch {BATCH}, Table I CNN"
    benchmark.extra_info.update(steps=STEPS, batch_size=BATCH)
    spec = make_spec("mnist", kind, "cnn", TrainConfig(epochs=1, batch_size=BATCH, n_train=STEPS * BATCH))
    trained = benchmark.pedantic(train_model, args=(spec, *splits), kwargs={"progress": False}, rounds=3)
    assert len(trained.curve) == 1 and trained.curve[0]["step"] == STEPS
