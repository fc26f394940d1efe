"""DeepFool: Moosavi-Dezfooli et al. (2016); the smallest L2 step to the nearest linearised decision boundary,
repeated (ART's DeepFool). A minimal-perturbation attack: no eps ball, untargeted only."""

from __future__ import annotations

from bench.attacks.family import ITER, ITERATIVE, AttackFamily, art_class


def _build(est, a, targeted, bs):
    return art_class("DeepFool")(est, batch_size=bs, verbose=False, **a)


DEEPFOOL = AttackFamily(
    "deepfool",
    "ART DeepFool",
    "per-class scores and their gradients (class_gradient)",
    _build,
    {"nb_grads": 10, "epsilon": 0.02},
    {"max_iter": ITER, "nb_grads": (2, 1000), "epsilon": (0.0, 10.0)},
    targeted=False,
    cost=lambda p: p["max_iter"] * p["nb_grads"],
    norm=None,
    uses_gradient=True,
    knows_model=False,
    steps=ITERATIVE,
    papers=True,
    origin="ART",
)
