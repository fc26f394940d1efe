"""The attack families of the matrix: what each builds, which parameters it takes, and what it sees.

Presets use the papers' parameter names (``eps``, ``c``, ``max_iter``, ``eps_step``); each family
maps them onto its implementation's arguments (``c`` is CW's ``initial_const``; for L-BFGS it is
Cleverhans's constant on the loss, which our Szegedy-form attack takes as ``initial_const = 1 / c``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from art.attacks import EvasionAttack

from bench.errors import ConfigError
from bench.registry import Registry

Builder = Callable[[Any, dict[str, Any], bool, int], EvasionAttack]
INTEGER_PARAMS = frozenset(
    {"max_iter", "binary_search_steps", "nb_grads", "num_random_init", "nb_random_init", "nb_restarts"}
)


@dataclass(frozen=True)
class AttackFamily:
    name: str
    implementation: str  # who wrote the code: "ART <class>" or "bench <class>"
    sees: str  # which view of the model the attack works from, for the reports
    build: Builder
    defaults: dict[str, Any]  # saito2019 Table 2 (Cleverhans defaults otherwise)
    ranges: dict[str, tuple[float, float]]  # allowed closed range per parameter
    targeted: bool = True
    untargeted: bool = True
    rename: dict[str, str] = field(default_factory=dict)  # preset name -> implementation argument
    cost: Callable[[dict[str, Any]], float] = lambda p: 1.0  # most gradient passes per image (dry-run estimate)

    def arguments(self, params: dict[str, Any]) -> dict[str, Any]:
        """Validated implementation arguments: defaults, overridden by ``params``."""
        merged = {**self.defaults, **params}
        for key, value in merged.items():
            if key not in self.ranges:
                raise ConfigError(
                    f"attack {self.name!r} has no parameter {key!r}; expected one of: {', '.join(self.ranges)}."
                )
            low, high = self.ranges[key]
            if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
                raise ConfigError(f"{self.name} {key}={value!r} is outside [{low}, {high}].")
            if key in INTEGER_PARAMS:
                if value != int(value):
                    raise ConfigError(f"{self.name} {key}={value!r} must be a whole number.")
                merged[key] = int(value)
        return {self.rename.get(k, k): v for k, v in merged.items()}

    def make(self, estimator: Any, params: dict[str, Any], targeted: bool, batch_size: int) -> EvasionAttack:
        if targeted and not self.targeted:
            raise ConfigError(f"attack {self.name!r} is untargeted only.")
        if not targeted and not self.untargeted:
            raise ConfigError(f"attack {self.name!r} is targeted only.")
        return self.build(estimator, self.arguments(params), targeted, batch_size)


ATTACKS: Registry[AttackFamily] = Registry("attack")

_EPS = (0.0, 1.0)
_ITER = (1, 100_000)
_CONST = (1e-6, 1e6)
LOSS_VIEW = "input gradient of the model's own training loss (loss_gradient)"


def _art(cls_name: str) -> Callable[..., EvasionAttack]:
    import art.attacks.evasion as evasion

    return getattr(evasion, cls_name)


def _fgsm(est, a, targeted, bs):
    return _art("FastGradientMethod")(est, norm=math.inf, targeted=targeted, batch_size=bs, **a)


def _bim(est, a, targeted, bs):
    return _art("BasicIterativeMethod")(est, targeted=targeted, batch_size=bs, verbose=False, **a)


def _mim(est, a, targeted, bs):
    return _art("MomentumIterativeMethod")(est, norm=math.inf, targeted=targeted, batch_size=bs, verbose=False, **a)


def _pgd(est, a, targeted, bs):
    return _art("ProjectedGradientDescent")(
        est, norm=math.inf, targeted=targeted, batch_size=bs, verbose=False, num_random_init=1, **a
    )


def _deepfool(est, a, targeted, bs):
    return _art("DeepFool")(est, batch_size=bs, verbose=False, **a)


def _cw_art(est, a, targeted, bs):
    return _art("CarliniL2Method")(est, targeted=targeted, batch_size=bs, verbose=False, **a)


def _ext(name: str) -> Builder:
    def build(est, a, targeted, bs):
        from attacks_ext import ATTACKS as EXT

        return EXT[name](est, targeted=targeted, batch_size=bs, **a)

    return build


def _lbfgs(est, a, targeted, bs):
    # saito2019 ran Cleverhans, whose constant multiplies the loss; ours (Szegedy's form) multiplies the
    # distance. The preset's c is the paper's, so the attack gets 1/c: a larger paper c, a stronger attack.
    from attacks_ext import ATTACKS as EXT

    c = a.pop("c")
    return EXT["lbfgs"](est, targeted=targeted, batch_size=bs, initial_const=1.0 / c, **a)


def _iters(p: dict[str, Any]) -> float:
    return p["max_iter"]


def _searches(p: dict[str, Any]) -> float:
    return p["binary_search_steps"] * p["max_iter"]


def _register() -> None:
    eps = {"eps": _EPS}
    ATTACKS.register(
        "fgsm",
        AttackFamily("fgsm", "ART FastGradientMethod (L-inf)", LOSS_VIEW, _fgsm, {}, eps),
    )
    ATTACKS.register(
        "bim",
        AttackFamily(
            "bim",
            "ART BasicIterativeMethod",
            LOSS_VIEW,
            _bim,
            {"eps_step": 0.05, "max_iter": 10},
            {**eps, "eps_step": _EPS, "max_iter": _ITER},
            cost=_iters,
        ),
    )
    ATTACKS.register(
        "mim",
        AttackFamily(
            "mim",
            "ART MomentumIterativeMethod (decay 1.0)",
            LOSS_VIEW,
            _mim,
            {"eps_step": 0.06, "max_iter": 10},
            {**eps, "eps_step": _EPS, "max_iter": _ITER},
            cost=_iters,
        ),
    )
    ATTACKS.register(
        "pgd",
        AttackFamily(
            "pgd",
            "ART ProjectedGradientDescent (L-inf, one random start)",
            LOSS_VIEW,
            _pgd,
            {"eps_step": 0.01, "max_iter": 40},
            {**eps, "eps_step": _EPS, "max_iter": _ITER},
            cost=_iters,
        ),
        aliases=("madry",),
    )
    ATTACKS.register(
        "deepfool",
        AttackFamily(
            "deepfool",
            "ART DeepFool",
            "per-class scores and their gradients (class_gradient)",
            _deepfool,
            {"nb_grads": 10, "epsilon": 0.02},
            {"max_iter": _ITER, "nb_grads": (2, 1000), "epsilon": (0.0, 10.0)},
            targeted=False,
            cost=lambda p: p["max_iter"] * p["nb_grads"],
        ),
    )
    cw_ranges = {
        "c": _CONST,
        "binary_search_steps": (1, 100),
        "max_iter": _ITER,
        "learning_rate": (1e-6, 10.0),
        "confidence": (0.0, 1e6),
    }
    cw_defaults = {"binary_search_steps": 5, "max_iter": 1000, "learning_rate": 0.01, "confidence": 0.0}
    ATTACKS.register(
        "cw_l2_art",
        AttackFamily(
            "cw_l2_art",
            "ART CarliniL2Method (line search; the ART baseline)",
            "per-class scores (predict, class_gradient)",
            _cw_art,
            cw_defaults,
            cw_ranges,
            rename={"c": "initial_const"},
            cost=lambda p: 19 * _searches(p),  # measured: about 19x the passes it needs
        ),
    )
    ATTACKS.register(
        "cw_l2",
        AttackFamily(
            "cw_l2",
            "bench CarliniWagnerL2 (Adam in tanh space, batched)",
            "the network's raw outputs taken for logits (for R:TANH:MSE the 128 tanh outputs, indexed by class number)",
            _ext("cw_l2"),
            cw_defaults,
            cw_ranges,
            rename={"c": "initial_const"},
            cost=_searches,
        ),
    )
    ATTACKS.register(
        "cw_l2_codeword",
        AttackFamily(
            "cw_l2_codeword",
            "bench CarliniWagnerL2Codeword (saito2019 section 3.3)",
            "euclidean distances from the "
            "output to each target representation (codewords; one-hot rows for softmax models)",
            _ext("cw_l2_codeword"),
            cw_defaults,
            cw_ranges,
            rename={"c": "initial_const"},
            cost=_searches,
        ),
    )
    ATTACKS.register(
        "lbfgs",
        AttackFamily(
            "lbfgs",
            "bench LBFGS (Szegedy et al., SciPy L-BFGS-B)",
            LOSS_VIEW + " times c, plus the squared L2 distance (c on the loss, as in Cleverhans and saito2019)",
            _lbfgs,
            {"binary_search_steps": 5, "max_iter": 1000},
            {"c": _CONST, "binary_search_steps": (1, 100), "max_iter": _ITER},
            untargeted=False,
            cost=_searches,
        ),
        aliases=("l_bfgs",),
    )


_register()


def _register_adaptive() -> None:
    from bench.attacks.adaptive import register  # the attacks that know the model, in their own module

    register()


_register_adaptive()
