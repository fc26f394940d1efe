"""MIM: Dong et al. (2018), "Boosting Adversarial Attacks with Momentum"; BIM whose step follows the accumulated
(momentum, decay 1.0) L1-normalised loss gradient, in the L-inf ball of radius ``eps`` (ART's
MomentumIterativeMethod)."""

from __future__ import annotations

import math

from bench.attacks.family import art_class, art_per_image, papers_iterative


def _build(est, a, targeted, bs):
    return art_class("MomentumIterativeMethod")(
        est, norm=math.inf, targeted=targeted, batch_size=bs, verbose=False, **art_per_image(est, a)
    )


MIM = papers_iterative(
    "mim", "ART MomentumIterativeMethod (decay 1.0)", _build, {"eps_step": 0.06, "max_iter": 10}, per_image=("eps",)
)
