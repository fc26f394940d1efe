"""APGD: Croce & Hein (2020), "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks"; L-inf PGD with momentum and a step-size schedule (ART's AutoProjectedGradientDescent),
handed our estimator unchanged (``loss_type=None``), so it ascends the model's own training loss."""

from __future__ import annotations

import math

from bench.attacks.family import EPS, ITER, ITERATIVE, RESTARTS, AttackFamily, art_class, restarts


def _build(est, a, targeted, bs):
    a = {"eps_step": 2 * a["eps"], **a}  # Croce & Hein's first step is 2 eps; the schedule halves it
    return art_class("AutoProjectedGradientDescent")(
        est, norm=math.inf, targeted=targeted, batch_size=bs, loss_type=None, verbose=False, **a
    )


APGD = AttackFamily(
    "apgd",
    "ART AutoProjectedGradientDescent (loss_type=None: our estimator)",
    "input gradient of the model's own training loss (loss_gradient), APGD's step schedule",
    _build,
    {"max_iter": 100, "nb_random_init": 1},
    {"eps": EPS, "eps_step": (0.0, 2.0), "max_iter": ITER, "nb_random_init": RESTARTS},
    cost=restarts,
    norm=math.inf,
    uses_gradient=True,
    knows_model=True,
    steps=ITERATIVE,
    origin="ART",
)
