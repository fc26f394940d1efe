"""The contract every registered attack family keeps, whoever wrote it: its description is filled in, it runs on
every model kind (or refuses a kind that lacks the view it declares it needs, when it is built), and its examples
are finite images in [0, 1] of the input's shape that stay inside the ball of the norm it declares, a ball its
examples do need (an L-inf family's examples leave the L2 ball of twice its radius). The flags and the worst case
trust ``norm``, so a family that misstates it fails here.

Cheap on purpose: 4 images per model kind and the smallest budget each parameter allows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.attacks import ATTACKS, AttackFamily
from bench.attacks.family import NORMS, STEPS
from models.estimator import make_estimator
from models.kinds import KINDS

EPS = {math.inf: 0.3, 2: 2.0}  # radii the test attacks with, by norm
SMALLEST = {"max_iter": 2, "binary_search_steps": 1, "num_random_init": 1, "nb_random_init": 1, "nb_restarts": 1}
TOLERANCE = 1e-5  # float32 rounding of x + delta, then delta again
N_IMAGES = 4

SLOW = {"autoattack"}  # its parameters set no budget: ART's APGDs, DeepFool and 5 x 5,000 Square queries


def _families() -> list:
    return [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name in ATTACKS.names()]


def cheap_params(family: AttackFamily) -> dict:
    """The family's parameters at the smallest budget its ranges allow; eps by its norm; c = 1 where it has one."""
    params = {}
    for key, (low, _) in family.ranges.items():
        if key == "eps":
            params[key] = EPS[family.norm]
        elif key in SMALLEST:
            params[key] = max(SMALLEST[key], low)
        elif key == "c":
            params[key] = 1.0
    return params


@pytest.fixture(scope="module")
def estimators(tiny_models) -> dict:
    return {name: make_estimator(m.spec, m.network.eval(), (1, 28, 28), 10) for name, m in tiny_models.items()}


@pytest.fixture(scope="module")
def batch(mnist_small) -> tuple[np.ndarray, np.ndarray]:
    return mnist_small.x[:N_IMAGES].numpy(), mnist_small.y[:N_IMAGES].numpy()


@pytest.mark.parametrize("name", ATTACKS.names())
def test_the_description_is_filled_in(name):
    family = ATTACKS.get(name)
    assert family.name == name and ATTACKS.canonical(name) == name
    assert all(isinstance(text, str) and text.strip() for text in (family.implementation, family.sees, family.origin))
    assert family.norm in NORMS and family.steps in STEPS
    assert all(isinstance(fact, bool) for fact in (family.uses_gradient, family.knows_model, family.papers))
    assert isinstance(family.needed_for_verdict, bool) and (family.targeted or family.untargeted)
    assert any(family.needs_view in kind.views for kind in KINDS.values())
    assert ("eps" in family.ranges) == (family.norm is not None)  # a ball has a radius; a minimal attack none
    assert set(family.defaults) <= set(family.ranges) and all(ATTACKS.get(a) is family for a in family.aliases)
    params = cheap_params(family)
    family.arguments(params)  # the defaults and the cheap budget are inside the ranges
    assert math.isfinite(family.cost({**family.defaults, **params})) and family.cost({**family.defaults, **params}) > 0


def _delta_norms(x: np.ndarray, x_adv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    delta = (x_adv.astype(np.float64) - x.astype(np.float64)).reshape(len(x), -1)
    return np.abs(delta).max(axis=1), np.linalg.norm(delta, axis=1)


def _run(family: AttackFamily, est, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    np.random.seed(0)
    torch.manual_seed(0)
    targeted = not family.untargeted
    labels = (y + 1) % 10 if targeted else y
    attack = family.make(est, cheap_params(family), targeted, N_IMAGES)
    return attack.generate(x, y=np.eye(10, dtype=np.float32)[labels])


@pytest.mark.parametrize("name", _families())
def test_runs_on_every_model_kind_inside_its_norm_ball(name, estimators, batch):
    family = ATTACKS.get(name)
    x, y = batch
    ran, largest_l2 = [], 0.0
    for kind_name, est in estimators.items():
        if family.needs_view not in KINDS.get(kind_name).views:
            with pytest.raises(ValueError, match="needs"):  # refused when built, saying what is missing
                family.make(est, cheap_params(family), not family.untargeted, N_IMAGES)
            continue
        x_adv = _run(family, est, x, y)
        where = f"{name} on {kind_name}"
        assert x_adv.shape == x.shape and np.isfinite(x_adv).all(), where
        assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0, where
        linf, l2 = _delta_norms(x, x_adv)
        if family.norm == math.inf:
            assert linf.max() <= EPS[math.inf] + TOLERANCE, f"{where}: L-inf {linf.max()} > eps"
        elif family.norm == 2:
            assert l2.max() <= EPS[2] * (1 + TOLERANCE) + TOLERANCE, f"{where}: L2 {l2.max()} > eps"
        ran.append(kind_name)
        largest_l2 = max(largest_l2, float(l2.max()))
    assert ran, f"{name} ran on no model kind"
    if family.norm == math.inf:  # an L2 family passed off as L-inf would stay inside this ball (and on its rim)
        assert largest_l2 > 2 * EPS[math.inf], f"{name}: no example left the L2 ball of radius 2 eps; is it L-inf?"
