"""The flags on a model whose forward pass is randomised: the tiny cross-entropy model plus, on each class
score, a * sin(omega * <r_c, x>) with the directions r_c drawn anew at every call (a shattered, stochastic
gradient in the manner of the randomised defences Athalye et al. 2018 broke).

Its scores move by at most a = 0.01, so its decisions are the plain model's; its input gradient is the plain
one buried under a fresh random direction of size a * omega = 3 per pixel. Its gradient health looks fine
(nothing zero, nothing vanishing), yet every gradient attack on it is blind: only the comparisons catch it.
Square, which reads the scores, breaks it as it breaks the plain model, and so do PGD examples crafted on
the plain model. The plain model raises no flag on the same attacks.

Measured while building this (80 images, eps 0.1, margin PGD step 0.025): more budget does not reveal a
randomised model here. 10 against 100 steps, or 1 against 10 restarts, moved accuracy by at most 0.09 at
gradient noise 0.03 to 3 and at Gaussian noise of sigma 1 or 3 on the scores, within sampling error; so
budget_sensitivity is tested on hand-made records (tests/test_flags.py), and this model fires the flags
that do catch it."""

from __future__ import annotations

import copy

import pytest
import torch

from bench.flags import all_flags
from models.estimator import make_estimator
from models.zoo import obtain
from tests.conftest import tiny_spec
from tests.test_diagnostics import attacks_at_eps_03, diagnostic_records

AMPLITUDE = 0.01
GRADIENT_NOISE = 3.0  # a * omega: the random gradient's size per pixel


class ShatteredScores(torch.nn.Module):
    """``network``'s scores plus a * sin(omega * <r_c, x>) per class, the r_c drawn at every forward."""

    def __init__(self, network: torch.nn.Module, amplitude: float, gradient_noise: float) -> None:
        super().__init__()
        self.network, self.amplitude, self.omega = network, amplitude, gradient_noise / amplitude
        self.backbone, self.head = network.backbone, network.head  # the estimator reads the head's kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.network(x)
        directions = torch.randn(scores.shape[1], x[0].numel(), device=x.device)
        return scores + self.amplitude * torch.sin(self.omega * x.flatten(1) @ directions.T)


@pytest.fixture(scope="module")
def images(mnist_small):
    return mnist_small.x[:80], mnist_small.y[:80]


@pytest.fixture(scope="module")
def models(store):
    stored = obtain(tiny_spec("O:SOFTMAX:CE"), store, progress=False)
    plain = make_estimator(stored.spec, stored.network.eval(), (1, 28, 28), 10)
    network = ShatteredScores(copy.deepcopy(stored.network).eval(), AMPLITUDE, GRADIENT_NOISE)
    return plain, make_estimator(stored.spec, network, (1, 28, 28), 10)


def test_the_randomised_scores_keep_the_decisions(models, images):
    plain, shattered = models
    x, _ = images
    agree = plain.predict(x.numpy()).argmax(1) == shattered.predict(x.numpy()).argmax(1)
    assert agree.mean() >= 0.97  # a move of 0.01 flips only near-ties


def test_gradient_health_does_not_see_the_randomised_gradient(models, images):
    plain, shattered = models
    x, y = images
    fired = {f.check for f in all_flags(diagnostic_records(shattered, x, y))}
    assert fired == set(), fired


def test_the_comparison_flags_fire_on_the_randomised_model_and_stay_quiet_on_the_plain_one(models, images):
    x, y = images
    plain, shattered = models
    fired = {f.check for f in all_flags(attacks_at_eps_03(shattered, plain, x, y))}
    assert fired == {"gradient_free_vs_gradient", "whitebox_vs_transfer"}, fired
    assert all_flags(attacks_at_eps_03(plain, shattered, x, y)) == []
