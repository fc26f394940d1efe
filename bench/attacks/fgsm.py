"""FGSM: Goodfellow et al. (2015), "Explaining and Harnessing Adversarial Examples"; one L-inf step of size eps
along the sign of the model's loss gradient (ART's FastGradientMethod)."""

from __future__ import annotations

import math

from bench.attacks.family import EPS, LOSS_VIEW, SINGLE, AttackFamily, art_class


def _build(est, a, targeted, bs):
    return art_class("FastGradientMethod")(est, norm=math.inf, targeted=targeted, batch_size=bs, **a)


FGSM = AttackFamily(
    "fgsm",
    "ART FastGradientMethod (L-inf)",
    LOSS_VIEW,
    _build,
    {},
    {"eps": EPS},
    norm=math.inf,
    uses_gradient=True,
    knows_model=False,
    steps=SINGLE,
    papers=True,
    origin="ART",
)
