"""BIM: Kurakin et al. (2017), "Adversarial examples in the physical world"; FGSM repeated ``max_iter`` times with
steps of ``eps_step``, clipped to the L-inf ball of radius ``eps`` (ART's BasicIterativeMethod)."""

from __future__ import annotations

import math

from bench.attacks.family import EPS, ITER, ITERATIVE, LOSS_VIEW, AttackFamily, art_class, iterations


def _build(est, a, targeted, bs):
    return art_class("BasicIterativeMethod")(est, targeted=targeted, batch_size=bs, verbose=False, **a)


BIM = AttackFamily(
    "bim",
    "ART BasicIterativeMethod",
    LOSS_VIEW,
    _build,
    {"eps_step": 0.05, "max_iter": 10},
    {"eps": EPS, "eps_step": EPS, "max_iter": ITER},
    cost=iterations,
    norm=math.inf,
    uses_gradient=True,
    knows_model=False,
    steps=ITERATIVE,
    papers=True,
    origin="ART",
)
