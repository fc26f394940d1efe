"""What an attack family is, and the pieces its descriptions share (parameter ranges, views, cost estimates).

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


EPS = (0.0, 1.0)
ITER = (1, 100_000)
CONST = (1e-6, 1e6)
RESTARTS = (1, 1000)
LOSS_VIEW = "input gradient of the model's own training loss (loss_gradient)"
DECISION_VIEW = "the model's own per-class decision scores, CW margin (logits; s·cos θ; −distance to codewords)"


def art_class(cls_name: str) -> Callable[..., EvasionAttack]:
    """ART's evasion attack class ``cls_name``, imported when first built (ART's import is slow)."""
    import art.attacks.evasion as evasion

    return getattr(evasion, cls_name)


def ext_class(name: str) -> Callable[..., EvasionAttack]:
    """The attack class registered as ``name`` in ``attacks_ext``."""
    from attacks_ext import ATTACKS as EXT

    return EXT[name]


def iterations(p: dict[str, Any]) -> float:
    return p["max_iter"]


def searches(p: dict[str, Any]) -> float:
    return p["binary_search_steps"] * p["max_iter"]


def restarts(p: dict[str, Any]) -> float:
    return p["max_iter"] * p.get("num_random_init", p.get("nb_random_init", 1))
