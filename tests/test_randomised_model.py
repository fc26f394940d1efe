"""The flags on a model whose forward pass is randomised: the tiny cross-entropy model plus, on each class
score, a * sin(omega * <r_c, x>) with the directions r_c drawn anew at every call (a shattered, stochastic
gradient in the manner of the randomised defences Athalye et al. 2018 broke).

Its scores move by at most a = 0.01, so its decisions are the plain model's; its input gradient is the plain
one buried under a fresh random direction of size a * omega = 3 per pixel. Its gradient health looks fine
(nothing zero, nothing vanishing), yet every gradient attack on it is blind: only the comparisons catch it.
Square, which reads the scores, breaks it as it breaks the plain model, and so do PGD examples crafted on
the plain model. The plain model raises no flag on the same attacks.

More budget does not reveal it: margin PGD with 10 times the steps stays within sampling error of the
short run, so budget_sensitivity, tested on hand-made records (tests/test_flags.py), stays quiet here; the
comparison flags are the ones that catch it."""

from __future__ import annotations

import pytest
import torch

from bench.results.flags import all_flags
from tests.test_diagnostics import attacks_at_eps_03, diagnostic_records, measured, tiny_ce

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
    return tiny_ce(store), tiny_ce(store, lambda network: ShatteredScores(network, AMPLITUDE, GRADIENT_NOISE))


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


def test_more_budget_does_not_reveal_the_randomised_model(models, images):
    """10 against 100 margin-PGD steps at eps 0.1: the flag that compares budgets stays quiet, because a
    buried gradient drifts as little per step over 100 steps as over 10; the randomised model is still far
    more robust than the plain one under both, which is the blindness the other flags catch."""
    x, y = images
    plain, shattered = models
    short, long = (measured(shattered, "pgd_margin", 0.1, x, y, eps_step=0.025, max_iter=k) for k in (10, 100))
    assert all_flags([short, long]) == []
    assert long.rate > measured(plain, "pgd_margin", 0.1, x, y, eps_step=0.025, max_iter=100).rate + 0.2
