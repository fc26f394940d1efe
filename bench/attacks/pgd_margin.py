"""Margin PGD (``attacks_ext.MarginPGD``): Madry et al. (2018)'s L-inf PGD with Carlini & Wagner (2017)'s margin
of the decision scores as the objective, with restarts: the attack that knows the model.

- ``pgd_margin``: on the forward's scores (logits; s·cos θ; −distance to codewords).
- ``pgd_margin_pretanh``: on the pre-tanh outputs' distances to atanh(codewords) (kinds with the "pretanh" view:
  codewords behind a tanh, such as R:TANH:MSE, R:TANH:CE and O:TANH:MSE; not R:LINEAR:MSE).
"""

from __future__ import annotations

import math

from bench.attacks.family import DECISION_VIEW, EPS, ITER, ITERATIVE, RESTARTS, AttackFamily, ext_class, restarts

RANGES = {"eps": EPS, "eps_step": EPS, "max_iter": ITER, "num_random_init": RESTARTS}
DEFAULTS = {"eps_step": 0.01, "max_iter": 100, "num_random_init": 1}  # presets add restarts


def _build(view: str):
    def build(est, a, targeted, bs):
        return ext_class("pgd_margin")(est, targeted=targeted, batch_size=bs, view=view, **a)

    return build


PGD_MARGIN = AttackFamily(
    "pgd_margin",
    "bench MarginPGD (L-inf, restarts)",
    DECISION_VIEW,
    _build("scores"),
    DEFAULTS,
    RANGES,
    cost=restarts,
    norm=math.inf,
    uses_gradient=True,
    knows_model=True,
    steps=ITERATIVE,
    per_image=("eps",),
    needed_for_verdict=True,  # the gradient attack on the decision every model gets
    origin="bench attacks_ext",
)
PGD_MARGIN_PRETANH = AttackFamily(
    "pgd_margin_pretanh",
    "bench MarginPGD on the pre-tanh view (L-inf, restarts)",
    "margin of −distance from the pre-tanh outputs to atanh(codewords); success on the decision",
    _build("pretanh"),
    DEFAULTS,
    RANGES,
    cost=restarts,
    norm=math.inf,
    uses_gradient=True,
    knows_model=True,
    steps=ITERATIVE,
    needs_view="pretanh",
    per_image=("eps",),
    origin="bench attacks_ext",
)
