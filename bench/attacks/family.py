"""What an attack family is, and the pieces its descriptions share (parameter ranges, views, cost estimates).

A family's description carries every fact the rest of the harness asks of it, so that nothing else lists
attack names: its norm (the worst case pools L-inf radii only), whether it reads a gradient, whether it was
built to read the model's decision rule, single step / iterative / ensemble, whether the papers ran it,
whether the report's verdict needs it, which view of the model it needs, and where its code comes from.

Presets use the papers' parameter names (``eps``, ``c``, ``max_iter``, ``eps_step``); each family
maps them onto its implementation's arguments (``c`` is CW's ``initial_const``; for L-BFGS it is
Cleverhans's constant on the loss, which our Szegedy-form attack takes as ``initial_const = 1 / c``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from art.attacks import EvasionAttack

from bench.errors import ConfigError
from bench.registry import code_fingerprint

SINGLE, ITERATIVE, ENSEMBLE = "single", "iterative", "ensemble"
STEPS = (SINGLE, ITERATIVE, ENSEMBLE)
NORMS = (math.inf, 2, None)
Builder = Callable[[Any, dict[str, Any], bool, int], EvasionAttack]
INTEGER_PARAMS = frozenset(
    {"max_iter", "binary_search_steps", "nb_grads", "num_random_init", "nb_random_init", "nb_restarts"}
)


BUILT_IN_ORIGINS = ("ART", "bench attacks_ext")  # the families this package registers


@dataclass(frozen=True)
class AttackFamily:
    """One attack family: how to build it, its parameters, and the facts reports, flags and the worst case ask.

    The facts are keyword-only. ``norm``, ``uses_gradient``, ``knows_model`` and ``steps`` have no default:
    a new family states them. ``norm`` is ``math.inf`` or ``2`` for an attack bounded by
    an ``eps`` ball (then ``eps`` is one of its parameters), ``None`` for a minimal-perturbation attack that
    searches for the smallest change (CW, DeepFool, L-BFGS: no ``eps``). ``steps`` is ``"single"`` (one
    gradient step), ``"iterative"``, or ``"ensemble"`` (runs several attacks and keeps each image's first
    success, as AutoAttack does: compared neither as one iterative attack nor as a gradient-free one).
    """

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
    norm: float | None = field(kw_only=True)  # math.inf, 2, or None (minimal perturbation, no eps ball)
    uses_gradient: bool = field(kw_only=True)  # reads any gradient of the model; False: queries scores only
    knows_model: bool = field(kw_only=True)  # built to read the decision rule, not the training loss or a stock view
    steps: str = field(kw_only=True)  # "single", "iterative" or "ensemble"
    papers: bool = field(default=False, kw_only=True)  # one of the attacks saito2019 or vu2018 ran
    needed_for_verdict: bool = field(default=False, kw_only=True)  # the verdict "holds" needs it run on the model
    needs_view: str = field(default="scores", kw_only=True)  # which of models.kinds.ModelKind.views it needs
    aliases: tuple[str, ...] = field(default=(), kw_only=True)
    # parameters its code takes as one value per image: a sweep over one of them is crafted in one call over
    # copies of the images (a craft group, bench.matrix.groups), in full batches instead of one small call per value;
    # "targeted" among them: a model's untargeted and targeted sweeps join that one call
    per_image: tuple[str, ...] = field(default=(), kw_only=True)
    origin: str = field(default="user", kw_only=True)  # "ART", "bench attacks_ext", "plugin <dist> <version>", "user"
    # parameters that take a word, with the words allowed, the default first (a preset writes solver = "torch"); a
    # cell that names the default is the cell that leaves it out (``without_default_words``); not in ``ranges``
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict, kw_only=True)

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ConfigError(f"attack {self.name!r} has norm {self.norm!r}; expected math.inf, 2 or None.")
        if self.steps not in STEPS:
            raise ConfigError(f"attack {self.name!r} has steps {self.steps!r}; expected one of {', '.join(STEPS)}.")
        if (self.norm is None) == ("eps" in self.ranges):
            bounded = "an eps ball but no norm" if self.norm is None else f"norm {self.norm} but no eps parameter"
            raise ConfigError(f"attack {self.name!r} has {bounded}: a bounded attack has both, a minimal one neither.")
        if shared := set(self.choices) & (set(self.ranges) | set(self.per_image)):
            raise ConfigError(f"attack {self.name!r}: {sorted(shared)} take words (choices), so not numbers too.")

    def without_default_words(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` less the words equal to their default: writing solver = "scipy" is the same cell as not."""
        return {k: v for k, v in params.items() if not (k in self.choices and v == self.choices[k][0])}

    def word_problem(self, key: str, value: Any) -> str | None:
        """What a word-valued parameter expects, when ``value`` is not one of its words; None when it is."""
        if value in self.choices[key]:
            return None
        return f"one of {', '.join(repr(word) for word in self.choices[key])}"

    @property
    def built_in(self) -> bool:
        return self.origin in BUILT_IN_ORIGINS

    def code_hash(self) -> str | None:
        """For any family not built in (a plugin, or one registered in-process), a hash of the code that builds it:
        part of its cells' hashes, so an edited attack runs again instead of reusing results and cached examples.
        None for the built-ins (their hashes stay)."""
        return None if self.built_in else code_fingerprint(self.build)

    def arguments(self, params: dict[str, Any]) -> dict[str, Any]:
        """Validated implementation arguments: defaults, overridden by ``params``."""
        merged = {**self.defaults, **params}
        for key, value in merged.items():
            if key in self.choices:
                if expected := self.word_problem(key, value):
                    raise ConfigError(f"{self.name} {key}={value!r} is not {expected}.")
                continue
            if key not in self.ranges:
                names = ", ".join([*self.ranges, *self.choices])
                raise ConfigError(f"attack {self.name!r} has no parameter {key!r}; expected one of: {names}.")
            low, high = self.ranges[key]
            if not isinstance(value, (int, float)):
                raise ConfigError(f"{self.name} {key}={value!r} is not a number; expected one in [{low}, {high}].")
            if not (math.isfinite(value) and low <= value <= high):
                raise ConfigError(f"{self.name} {key}={value!r} is outside [{low}, {high}].")
            if key in INTEGER_PARAMS:
                if value != int(value):
                    raise ConfigError(f"{self.name} {key}={value!r} must be a whole number.")
                merged[key] = int(value)
        return {self.rename.get(k, k): v for k, v in merged.items()}

    def make(
        self,
        estimator: Any,
        params: dict[str, Any],
        targeted: bool | np.ndarray,
        batch_size: int,
        per_image: dict[str, np.ndarray] | None = None,
    ) -> EvasionAttack:
        """The attack with ``params``; ``per_image`` gives some of them (of ``self.per_image``) one value per image,
        each value checked as ``params`` are. ``targeted`` is one flag per image (a bool array) where the family
        takes "targeted" per image."""
        targeted = self._check_targeted(targeted)
        arguments = self.arguments(params)
        for name, values in (per_image or {}).items():
            if name not in self.per_image:
                raise ConfigError(f"attack {self.name!r} takes no per-image {name!r}; it takes: {self.per_image}.")
            for value in set(np.asarray(values).tolist()):
                self.arguments({**params, name: value})
            arguments[self.rename.get(name, name)] = np.asarray(values, dtype=np.float64)
        return self.build(estimator, arguments, targeted, batch_size)

    def _check_targeted(self, targeted: bool | np.ndarray) -> bool | np.ndarray:
        if isinstance(targeted, np.ndarray):
            if "targeted" not in self.per_image:
                raise ConfigError(f"attack {self.name!r} takes no per-image 'targeted'; it takes: {self.per_image}.")
            flags = set(targeted.astype(bool).tolist())
            targeted = targeted.astype(bool)
        else:
            flags = {bool(targeted)}
        if True in flags and not self.targeted:
            raise ConfigError(f"attack {self.name!r} is untargeted only.")
        if False in flags and not self.untargeted:
            raise ConfigError(f"attack {self.name!r} is targeted only.")
        return targeted


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


def art_per_image(estimator: Any, a: dict[str, Any]) -> dict[str, Any]:
    """ART's iterative attacks take eps per image only with eps_step per image too, both shaped (N, 1, ..., 1)."""
    arrays = [a[k] for k in ("eps", "eps_step") if isinstance(a.get(k), np.ndarray)]
    if not arrays:
        return a
    shape = (len(arrays[0]),) + (1,) * len(estimator.input_shape)
    as_array = lambda v: np.broadcast_to(np.asarray(v, dtype=np.float32).reshape(-1, *shape[1:]), shape).copy()  # noqa: E731
    return {**a, "eps": as_array(a["eps"]), "eps_step": as_array(a["eps_step"])}


def iterations(p: dict[str, Any]) -> float:
    return p["max_iter"]


def plain_value(value: Any) -> float | str:
    """A parameter's value as cells, records and stores hold it: a number as a float, a word as itself."""
    return value if isinstance(value, str) else float(value)


def searches(p: dict[str, Any]) -> float:
    return p["binary_search_steps"] * p["max_iter"]


def restarts(p: dict[str, Any]) -> float:
    return p["max_iter"] * p.get("num_random_init", p.get("nb_random_init", 1))


def papers_iterative(name: str, implementation: str, build: Builder, defaults: dict[str, Any], **more: Any):
    """The papers' iterative L-inf attacks on the model's own loss (BIM, MIM, PGD): ART's, swept over eps with
    eps_step and max_iter, one gradient pass per iteration."""
    return AttackFamily(
        name,
        implementation,
        LOSS_VIEW,
        build,
        defaults,
        {"eps": EPS, "eps_step": EPS, "max_iter": ITER},
        cost=iterations,
        norm=math.inf,
        uses_gradient=True,
        knows_model=False,
        steps=ITERATIVE,
        papers=True,
        origin="ART",
        **more,
    )
