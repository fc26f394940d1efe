"""The flags on models built to defeat them: a cross-entropy model whose logits are scaled by 1e4 (its softmax
saturates, so the loss gradient is exactly zero wherever it is right) or by 30 (the gradient vanishes below
float32's rounding), against the same model unscaled. tests/test_randomised_model.py has a randomised one.

The saturated model has the same decisions as the plain one; only its loss gradient is gone. The gradient
health shares, and the flags read from attacks actually run on both, must tell them apart."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.attacks import ATTACKS
from bench.results.diagnostics import gradient_health
from bench.results.flags import all_flags
from bench.results.store import Record
from models.estimator import make_estimator
from models.zoo import obtain
from tests.conftest import tiny_spec
from tests.test_flags import cell, diagnostic

SCALE = 1e4


@pytest.fixture(scope="module")
def images(mnist_small):
    return mnist_small.x[:80], mnist_small.y[:80]


def tiny_ce(store, change=None):
    """The tiny cross-entropy model as an estimator; ``change`` edits or wraps a copy of its network."""
    stored = obtain(tiny_spec("O:SOFTMAX:CE"), store, progress=False)
    network = copy.deepcopy(stored.network).eval()
    return make_estimator(stored.spec, change(network) if change else network, (1, 28, 28), 10)


@pytest.fixture(scope="module")
def plain(store):
    return tiny_ce(store)


def scaled(store, scale: float):
    """The tiny network with its last layer scaled: argmax unchanged, softmax sharper by ``scale``."""

    def scale_last_layer(network):
        last = [m for m in network.head.modules() if isinstance(m, torch.nn.Linear)][-1]
        with torch.no_grad():
            last.weight.mul_(scale)
            last.bias.mul_(scale)
        return network

    return tiny_ce(store, scale_last_layer)


@pytest.fixture(scope="module")
def saturated(store):
    """Softmax saturated in float32: the loss gradient is exactly zero wherever the model is right."""
    return scaled(store, SCALE)


def test_a_milder_scale_makes_the_gradient_vanish_rather_than_vanish_to_zero(store, images):
    """Logits x30: the other classes' softmax shares are tiny but representable, so the gradient is not
    zero but below float32's rounding on most images (measured: 56% vanishing, 28% zero, of 80)."""
    x, y = images
    records = diagnostic_records(scaled(store, 30.0), x, y)
    assert next(r for r in records if r.attack == "gradient_vanishing").rate > 0.3
    assert "gradient_vanishing" in {f.check for f in all_flags(records)}


def diagnostic_records(est, x, y) -> list[Record]:
    health = gradient_health(est, x, y, batch_size=32)
    return [diagnostic(check, int(flags.sum()), len(flags)) for check, flags in health.items()]


def crafted(est, attack: str, eps: float, x, y, **params) -> np.ndarray:
    np.random.seed(0)
    torch.manual_seed(0)
    family = ATTACKS.get(attack)
    args = {**family.defaults, **params, "eps": eps}
    return family.make(est, args, False, 128).generate(x.numpy(), y=F.one_hot(y, 10).numpy())


def measured(est, attack: str, eps: float, x, y, on=None, **params) -> Record:
    """White-box on ``est``; with ``on``, crafted on ``est`` and evaluated on ``on`` (transfer)."""
    x_adv = crafted(est, attack, eps, x, y, **params)
    target = on or est
    hits = int((target.predict(x_adv).argmax(1) == y.numpy()).sum())
    if on is not None:
        return cell(attack, eps, hits, n=len(y), setting="transfer", source="other", **params)
    return cell(attack, eps, hits, n=len(y), **params)


def attacks_at_eps_03(est, other, x, y) -> list[Record]:
    """FGSM, PGD, PGD crafted on ``other`` (transfer) and Square on ``est`` at eps 0.3: the comparisons that
    tell a blind gradient from a robust model."""
    pgd = {"eps_step": 0.05, "max_iter": 10}
    return [
        measured(est, "fgsm", 0.3, x, y),
        measured(est, "pgd", 0.3, x, y, **pgd),
        measured(other, "pgd", 0.3, x, y, on=est, **pgd),
        measured(est, "square", 0.3, x, y, max_iter=200),
    ]


def test_scaling_the_logits_keeps_every_decision(plain, saturated, images):
    x, _ = images
    assert (plain.predict(x.numpy()).argmax(1) == saturated.predict(x.numpy()).argmax(1)).all()


def test_gradient_health_tells_the_saturated_model_from_the_plain_one(plain, saturated, images):
    x, y = images
    healthy = gradient_health(plain, x, y)
    blind = gradient_health(saturated, x, y)
    assert healthy["gradient_zero"].float().mean() < 0.05
    assert healthy["gradient_vanishing"].float().mean() < 0.05
    right = saturated.predict(x.numpy()).argmax(1) == y.numpy()
    # zero exactly where the scaled softmax is one-hot on the true class: every image it gets right
    assert blind["gradient_zero"].numpy()[right].mean() > 0.9
    assert blind["output_saturated"].float().mean() > healthy["output_saturated"].float().mean()
    fired = {f.check for f in all_flags(diagnostic_records(saturated, x, y))}
    assert "gradient_zero" in fired
    assert all_flags(diagnostic_records(plain, x, y)) == []


def test_the_attack_flags_fire_on_the_saturated_model_and_stay_quiet_on_the_plain_one(plain, saturated, images):
    """FGSM and PGD on the loss cannot move the saturated model; Square, which only reads its scores, can, and
    so can PGD examples crafted on the other model (the same decisions, a working gradient). At eps 0.5 the
    loss attacks leave it far above chance. Margin PGD, which reads the scores' margin rather than the
    saturated softmax, breaks it where FGSM cannot (the papers' attacks overstate its robustness). The plain
    model, with the saturated one as its transfer source, raises none of these flags."""
    x, y = images

    def evaluation(est, other):
        return [
            *attacks_at_eps_03(est, other, x, y),
            measured(est, "pgd", 0.5, x, y, eps_step=0.1, max_iter=10),
            measured(est, "fgsm", 0.2, x, y),
            measured(est, "pgd_margin", 0.2, x, y, eps_step=0.05, max_iter=10),
        ]

    fired = {f.check for f in all_flags(evaluation(saturated, plain))}
    expected = {"gradient_free_vs_gradient", "chance_at_large_eps", "whitebox_vs_transfer", "papers_attacks_overstate"}
    assert fired == expected, fired
    assert all_flags(evaluation(plain, saturated)) == []
