"""PGD: Madry et al. (2018), "Towards Deep Learning Models Resistant to Adversarial Attacks"; BIM from one uniform
random start in the L-inf ball of radius ``eps`` (ART's ProjectedGradientDescent)."""

from __future__ import annotations

import math

from bench.attacks.family import art_class, papers_iterative


def _build(est, a, targeted, bs):
    return art_class("ProjectedGradientDescent")(
        est, norm=math.inf, targeted=targeted, batch_size=bs, verbose=False, num_random_init=1, **a
    )


PGD = papers_iterative(
    "pgd",
    "ART ProjectedGradientDescent (L-inf, one random start)",
    _build,
    {"eps_step": 0.01, "max_iter": 40},
    aliases=("madry",),
)
