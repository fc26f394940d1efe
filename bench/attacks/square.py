"""Square: Andriushchenko et al. (2020), "Square Attack: a query-efficient black-box adversarial attack via random
search"; gradient-free, on the scores ``predict`` returns (ART's SquareAttack), in the L-inf (``square``) or L2
(``square_l2``) ball of radius ``eps``. Untargeted only."""

from __future__ import annotations

import math

from bench.attacks.family import EPS, ITER, ITERATIVE, RESTARTS, AttackFamily, art_class

DEFAULTS = {"max_iter": 1000, "p_init": 0.8, "nb_restarts": 1}
RANGES = {"max_iter": ITER, "p_init": (0.0, 1.0), "nb_restarts": RESTARTS}


def _build(norm: float):
    def build(est, a, targeted, bs):
        return art_class("SquareAttack")(est, norm=norm, batch_size=bs, verbose=False, **a)

    return build


def _queries(p) -> float:
    return p["max_iter"] * p["nb_restarts"] / 2  # forward only: about half a gradient pass


SQUARE = AttackFamily(
    "square",
    "ART SquareAttack (L-inf, gradient-free)",
    "per-class scores from predict (queries only)",
    _build(math.inf),
    DEFAULTS,
    {"eps": EPS, **RANGES},
    targeted=False,
    cost=_queries,
    norm=math.inf,
    uses_gradient=False,
    knows_model=True,
    steps=ITERATIVE,
    needed_for_verdict=True,  # the check that the gradients do not mislead
    origin="ART",
)
SQUARE_L2 = AttackFamily(
    "square_l2",
    "ART SquareAttack (L2, gradient-free)",
    "per-class scores from predict (queries only)",
    _build(2),
    DEFAULTS,
    {"eps": (0.0, 100.0), **RANGES},
    targeted=False,
    cost=_queries,
    norm=2,
    uses_gradient=False,
    knows_model=True,
    steps=ITERATIVE,
    origin="ART",
)
