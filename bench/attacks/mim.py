"""MIM: Dong et al. (2018), "Boosting Adversarial Attacks with Momentum"; BIM whose step follows the accumulated
(momentum, decay 1.0) L1-normalised loss gradient, in the L-inf ball of radius ``eps`` (ART's
MomentumIterativeMethod)."""

from __future__ import annotations

import math

from bench.attacks.family import EPS, ITER, ITERATIVE, LOSS_VIEW, AttackFamily, art_class, iterations


def _build(est, a, targeted, bs):
    return art_class("MomentumIterativeMethod")(
        est, norm=math.inf, targeted=targeted, batch_size=bs, verbose=False, **a
    )


MIM = AttackFamily(
    "mim",
    "ART MomentumIterativeMethod (decay 1.0)",
    LOSS_VIEW,
    _build,
    {"eps_step": 0.06, "max_iter": 10},
    {"eps": EPS, "eps_step": EPS, "max_iter": ITER},
    cost=iterations,
    norm=math.inf,
    uses_gradient=True,
    knows_model=False,
    steps=ITERATIVE,
    papers=True,
    origin="ART",
)
