"""The attacks that know the model (issue: robustness you can trust), registered beside the papers' attacks.

- ``pgd_margin``: our MarginPGD, L-inf PGD on the margin of the model's decision scores, with restarts.
- ``pgd_margin_pretanh``: the same on the pre-tanh outputs' distances to atanh(codewords) (R:TANH:MSE only).
- ``apgd``: ART's AutoProjectedGradientDescent handed our estimator unchanged (``loss_type=None``), so it
  ascends the model's own training loss through ``loss_gradient``.
- ``square`` / ``square_l2``: ART's SquareAttack, gradient-free, on the scores ``predict`` returns.
- ``autoattack``: ART's AutoAttack as it ships: it rebuilds a plain ``PyTorchClassifier`` from the bare
  module with its own losses (cross-entropy and DLR on our per-class scores), so it never sees our loss.
"""

from __future__ import annotations

import math
from typing import Any

from bench.attacks import _EPS, _ITER, ATTACKS, AttackFamily, _art

DECISION_VIEW = "the model's own per-class decision scores, CW margin (logits; s·cos θ; −distance to codewords)"
_RESTARTS = (1, 1000)


def _margin_pgd(view: str):
    def build(est, a, targeted, bs):
        from attacks_ext import ATTACKS as EXT

        return EXT["pgd_margin"](est, targeted=targeted, batch_size=bs, view=view, **a)

    return build


def _apgd(est, a, targeted, bs):
    a = {"eps_step": 2 * a["eps"], **a}  # Croce & Hein's first step is 2 eps; the schedule halves it
    return _art("AutoProjectedGradientDescent")(
        est, norm=math.inf, targeted=targeted, batch_size=bs, loss_type=None, verbose=False, **a
    )


def _square(norm: float):
    def build(est, a, targeted, bs):
        return _art("SquareAttack")(est, norm=norm, batch_size=bs, verbose=False, **a)

    return build


def _autoattack(est, a, targeted, bs):
    return _art("AutoAttack")(est, norm=math.inf, targeted=targeted, batch_size=bs, **a)


def _restarts(p: dict[str, Any]) -> float:
    return p["max_iter"] * p.get("num_random_init", p.get("nb_random_init", 1))


def register() -> None:
    eps = {"eps": _EPS}
    pgd_ranges = {**eps, "eps_step": _EPS, "max_iter": _ITER, "num_random_init": _RESTARTS}
    pgd_defaults = {"eps_step": 0.01, "max_iter": 100, "num_random_init": 1}  # presets add restarts
    ATTACKS.register(
        "pgd_margin",
        AttackFamily(
            "pgd_margin",
            "bench MarginPGD (L-inf, restarts)",
            DECISION_VIEW,
            _margin_pgd("scores"),
            pgd_defaults,
            pgd_ranges,
            cost=_restarts,
        ),
    )
    ATTACKS.register(
        "pgd_margin_pretanh",
        AttackFamily(
            "pgd_margin_pretanh",
            "bench MarginPGD on the pre-tanh view (L-inf, restarts)",
            "margin of −distance from the pre-tanh outputs to atanh(codewords); success on the decision",
            _margin_pgd("pretanh"),
            pgd_defaults,
            pgd_ranges,
            cost=_restarts,
        ),
    )
    ATTACKS.register(
        "apgd",
        AttackFamily(
            "apgd",
            "ART AutoProjectedGradientDescent (loss_type=None: our estimator)",
            "input gradient of the model's own training loss (loss_gradient), APGD's step schedule",
            _apgd,
            {"max_iter": 100, "nb_random_init": 1},
            {**eps, "eps_step": (0.0, 2.0), "max_iter": _ITER, "nb_random_init": _RESTARTS},
            cost=_restarts,
        ),
    )
    square_defaults = {"max_iter": 1000, "p_init": 0.8, "nb_restarts": 1}
    square_ranges = {"max_iter": _ITER, "p_init": (0.0, 1.0), "nb_restarts": _RESTARTS}
    ATTACKS.register(
        "square",
        AttackFamily(
            "square",
            "ART SquareAttack (L-inf, gradient-free)",
            "per-class scores from predict (queries only)",
            _square(math.inf),
            square_defaults,
            {**eps, **square_ranges},
            targeted=False,
            cost=lambda p: p["max_iter"] * p["nb_restarts"] / 2,  # forward only: about half a gradient pass
        ),
    )
    ATTACKS.register(
        "square_l2",
        AttackFamily(
            "square_l2",
            "ART SquareAttack (L2, gradient-free)",
            "per-class scores from predict (queries only)",
            _square(2),
            square_defaults,
            {"eps": (0.0, 100.0), **square_ranges},
            targeted=False,
            cost=lambda p: p["max_iter"] * p["nb_restarts"] / 2,
        ),
    )
    ATTACKS.register(
        "autoattack",
        AttackFamily(
            "autoattack",
            "ART AutoAttack (stock: APGD-CE, APGD-DLR, DeepFool, Square on the bare module)",
            "the bare module's per-class scores with AutoAttack's own losses (cross-entropy, DLR): never our loss",
            _autoattack,
            {"eps_step": 0.1},
            {**eps, "eps_step": (0.0, 1.0)},
            targeted=False,
            cost=lambda p: 4 * 100 * 5,  # four attacks, about 100 iterations and 5 restarts each
        ),
    )
