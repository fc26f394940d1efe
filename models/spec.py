"""The full configuration of a model, validated once into frozen objects whose hash keys the model store.

Model names are the papers': ``O:SOFTMAX:CE``, ``O:SOFTMAX:MSE``, ``R:TANH:MSE``, ``hinge``,
``lmcl`` (also ``lmcl_s10_m0.3`` as vu2018 writes it), with lower_snake aliases.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from bench.registry import Registry
from models.kinds import KINDS, ModelKind, check

ARCHS = Registry[str]("architecture")
DEFAULT_ARCH = "cnn"
EXTERNAL_KEY_PREFIX = "ext-"  # store keys of networks evaluated as given (models.external), never a ModelSpec's
ARCHS.register(DEFAULT_ARCH, "vu2018 Table I CNN", aliases=("table1_cnn",))
ARCHS.register("small_cnn", "Wong et al. 2020's MNIST CNN (FGSM-RS)", aliases=("wong2020_cnn",))
ARCHS.register("densenet", "DenseNet-BC", aliases=("densenet_bc",))


def check_eps(name: str, value: float) -> None:
    check(
        math.isfinite(value) and 0.0 <= value <= 1.0,
        f"{name}={value} is outside [0, 1]; pixels are in [0, 1], so a perturbation size must be too.",
    )


AT_METHODS = ("pgd", "fgsm_rs")
GUARD_EVERY = 100  # steps between FGSM-RS's guard checks: the training curve's points (models.training.CURVE_EVERY)
SCHEDULES = ("cosine", "constant", "cyclic")


@dataclass(frozen=True)
class AdversarialTraining:
    """Adversarial training: every batch is replaced by adversarial examples of the model as it is at that step.

    ``method = "pgd"`` (the default): PGD from a random start inside the L-inf ball (Madry et al.; vu2018 uses
    k=40, step 0.01, eps 0.3). ``method = "fgsm_rs"``: one FGSM step of size ``alpha`` (default 1.25 x eps)
    from a uniform random start in the ball (Wong, Rice and Kolter 2020, "Fast is better than free"); there
    ``eps_step`` and ``max_iter`` are the PGD of the guard against catastrophic overfitting, which attacks a
    fixed training batch every CURVE_EVERY steps and stops the training, keeping the last weights that passed,
    when that PGD accuracy falls more than ``guard_drop`` below the last check that passed, at ``guard_checks``
    checks in a row (models/fast_at.py).
    """

    eps: float = 0.3
    eps_step: float = 0.01
    max_iter: int = 40
    method: str = "pgd"
    alpha: float | None = None  # fgsm_rs only; None there means 1.25 x eps
    guard_drop: float | None = None  # fgsm_rs only; None there means Wong et al.'s 0.2
    guard_checks: int | None = None  # fgsm_rs only; None there means 1, Wong et al.'s (their check is per epoch)
    clip_start: bool | None = None  # fgsm_rs only; None there means False, Wong et al.'s (see models.pgd.fgsm_rs)

    def __post_init__(self) -> None:
        check_eps("adversarial training eps", self.eps)
        check_eps("adversarial training eps_step", self.eps_step)
        check(self.eps_step > 0, f"adversarial training eps_step={self.eps_step} must be above 0.")
        check(self.max_iter >= 1, f"adversarial training max_iter={self.max_iter} must be at least 1.")
        check(self.method in AT_METHODS, f"adversarial training method={self.method!r}; expected pgd or fgsm_rs.")
        if self.method == "pgd":
            for name in ("alpha", "guard_drop", "guard_checks", "clip_start"):
                value = getattr(self, name)
                check(value is None, f"adversarial training {name}={value} belongs to method fgsm_rs, not pgd.")
            return
        object.__setattr__(self, "alpha", 1.25 * self.eps if self.alpha is None else float(self.alpha))
        object.__setattr__(self, "guard_drop", 0.2 if self.guard_drop is None else float(self.guard_drop))
        check(0 < self.alpha <= 1, f"FGSM-RS alpha={self.alpha} must be in (0, 1] (Wong et al.: 1.25 x eps).")
        check(0 < self.guard_drop <= 1, f"FGSM-RS guard_drop={self.guard_drop} must be in (0, 1] (Wong et al.: 0.2).")
        checks = 1 if self.guard_checks is None else self.guard_checks
        ok = isinstance(checks, int) and not isinstance(checks, bool) and checks >= 1
        check(ok, f"FGSM-RS guard_checks={checks!r} must be an integer >= 1 (Wong et al.: 1).")
        object.__setattr__(self, "guard_checks", checks)
        clip = False if self.clip_start is None else self.clip_start
        check(isinstance(clip, bool), f"FGSM-RS clip_start={clip!r} must be true or false (Wong et al.: false).")
        object.__setattr__(self, "clip_start", clip)

    @property
    def passes(self) -> float:
        """Forward and backward passes of the attack per training image, before the update's own: PGD's
        ``max_iter``; FGSM-RS's one, plus its guard's PGD (``max_iter`` + 1 passes of one batch every
        GUARD_EVERY steps, models.training.CURVE_EVERY)."""
        return self.max_iter if self.method == "pgd" else 1 + (self.max_iter + 1) / GUARD_EVERY

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON data; for the default method PGD only its three fields, so PGD models keep the store
        keys they had before the method existed, and FGSM-RS's ``guard_checks`` only when it is not 1 and
        ``clip_start`` only when false, so FGSM-RS models keep theirs from before those existed (every one of them
        was trained with the clipped start: ``from_stored`` reads a missing ``clip_start`` back as true)."""
        data = asdict(self)
        if self.method == "pgd":
            for name in ("method", "alpha", "guard_drop", "guard_checks", "clip_start"):
                del data[name]
            return data
        if data["guard_checks"] == 1:
            del data["guard_checks"]
        if data["clip_start"]:
            del data["clip_start"]
        return data

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> AdversarialTraining:
        """The inverse of ``to_dict``: an FGSM-RS configuration stored without ``clip_start`` clipped its start."""
        if data.get("method", "pgd") == "fgsm_rs":
            data = {"clip_start": True, **data}
        return cls(**data)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 6
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    optimizer: str = "adam"
    schedule: str = "cosine"  # annealed to 0 over all steps; constant; cyclic: 0 -> lr at 2/5 of the steps -> 0
    adversarial: AdversarialTraining | dict[str, Any] | None = None  # a dict is made an AdversarialTraining
    n_train: int | None = None  # a seeded subset of the training split (tests, quick runs); None = all of it

    def __post_init__(self) -> None:
        check(self.epochs >= 1, f"epochs={self.epochs} must be at least 1.")
        check(self.batch_size >= 1, f"batch_size={self.batch_size} must be at least 1.")
        check(
            math.isfinite(self.lr) and self.lr > 0,
            f"learning rate lr={self.lr} must be a positive number (Adam's usual value is 1e-3).",
        )
        check(self.optimizer == "adam", f"optimizer={self.optimizer!r} is not supported; expected 'adam'.")
        check(self.schedule in SCHEDULES, f"schedule={self.schedule!r}; expected one of {', '.join(SCHEDULES)}.")
        if isinstance(self.adversarial, dict):  # the Python API and presets may give the table as it is
            object.__setattr__(self, "adversarial", _adversarial(self.adversarial))
        check(self.n_train is None or self.n_train >= 1, f"n_train={self.n_train} must be at least 1 image.")


def _adversarial(table: dict[str, Any]) -> AdversarialTraining:
    known = [f.name for f in fields(AdversarialTraining)]
    unknown = sorted(set(table) - set(known))
    check(not unknown, f"adversarial training keys {unknown} are unknown; expected some of {', '.join(known)}.")
    return AdversarialTraining(**table)


@dataclass(frozen=True)
class ModelSpec:
    dataset: str
    model: str
    arch: str
    train: TrainConfig = field(default_factory=TrainConfig)
    codeword_length: int | None = None
    codebook: str | None = None  # fingerprint of the codebook's contents, never the key
    codebook_default_key: bool | None = None
    lmcl_s: float | None = None
    lmcl_m: float | None = None
    densenet_depth: int | None = None
    densenet_growth: int | None = None
    kind_params: tuple[tuple[str, float], ...] = ()  # a plugin kind's parameters (built-ins use the fields above)
    plugin: tuple[tuple[str, str], ...] = ()  # a plugin kind's origin, version and code hash: part of the key

    @property
    def kind(self) -> ModelKind:
        return KINDS.get(self.model)

    def param(self, name: str) -> Any:
        """The value of one of the kind's parameters (a field for built-in kinds, else ``kind_params``)."""
        if name in _BUILT_IN_PARAMS:
            return getattr(self, name)
        return dict(self.kind_params)[name]

    def kind_values(self) -> dict[str, Any]:
        """Every parameter of the kind with its value."""
        return {name: self.param(name) for name in self.kind.params}

    @property
    def loss_label(self) -> str:
        """The model as vu2018's tables name losses: cross_entropy, hinge, lmcl_s10_m0.3; else the paper name."""
        label = self.kind.label
        return label(self.kind_values()) if label else self.model

    @property
    def name(self) -> str:
        """A readable name, e.g. ``mnist/cnn/R:TANH:MSE``, ``mnist/cnn+pgd_at/lmcl_s10_m0.3`` (``+fgsm_rs_at``)."""
        adv = self.train.adversarial
        arch = self.arch + (f"+{adv.method}_at" if adv else "")
        return f"{self.dataset}/{arch}/{self.loss_label}"

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON data; the plugin fields only where set, so built-in keys never change."""
        data = asdict(self)
        if self.train.adversarial:
            data["train"]["adversarial"] = self.train.adversarial.to_dict()
        for name in ("kind_params", "plugin"):
            if data[name]:
                data[name] = dict(data[name])
            else:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        train = dict(data["train"])
        adv = train.get("adversarial")
        train["adversarial"] = AdversarialTraining.from_stored(adv) if adv else None
        plugin_fields = {k: tuple(sorted(data.get(k, {}).items())) for k in ("kind_params", "plugin")}
        return cls(**{**data, **plugin_fields, "train": TrainConfig(**train)})

    def key(self) -> str:
        """A hash of the whole configuration: the model store's key."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def probe(self) -> str:
        """The configuration's hash without a plugin's code hash and version: the same model, trained the same way,
        from code that may have changed (the regression gate compares such models by their rates)."""
        blob = json.dumps({k: v for k, v in self.to_dict().items() if k != "plugin"}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def with_train(self, **changes: Any) -> ModelSpec:
        return replace(self, train=replace(self.train, **changes))


_BUILT_IN_PARAMS = ("codeword_length", "lmcl_s", "lmcl_m")  # kind parameters that are ModelSpec fields (old keys)


def parse_model_name(model: str) -> tuple[ModelKind, dict[str, float]]:
    """A kind and the parameters its name carries: ``lmcl_s10_m0.3`` is lmcl with s 10 and m 0.3."""
    for name in KINDS.names():
        kind = KINDS.get(name)
        match = re.match(kind.pattern, model, re.IGNORECASE) if kind.pattern else None
        if match:
            return kind, {k: float(v) for k, v in match.groupdict().items()}
    return KINDS.get(model), {}


def make_spec(
    dataset: str,
    model: str,
    arch: str = DEFAULT_ARCH,
    train: TrainConfig | None = None,
    *,
    codeword_length: int = 128,
    codebook_key: str | None = None,
    lmcl_s: float = 10.0,
    lmcl_m: float = 0.3,
    densenet_depth: int = 40,
    densenet_growth: int = 12,
    n_classes: int = 10,
    params: dict[str, Any] | None = None,
) -> ModelSpec:
    """Validate names and hyperparameters into a ModelSpec; raises a clear error before any work starts.

    ``params`` sets a kind's parameters by name; the keyword arguments of the built-in kinds apply to the
    kinds that declare them (``lmcl_s`` to lmcl, ``codeword_length`` to R:TANH:MSE) and are ignored by others.
    """
    from bench.data.datasets import DATASETS  # local: keeps models importable without torchvision at import time

    dataset = DATASETS.canonical(dataset)
    kind, named = parse_model_name(model)
    arch = ARCHS.canonical(arch)
    legacy = {"codeword_length": codeword_length, "lmcl_s": float(lmcl_s), "lmcl_m": float(lmcl_m)}
    given = {**{k: v for k, v in legacy.items() if k in kind.params}, **named, **(params or {})}
    values = kind.resolve(given, n_classes)
    extra: dict[str, Any] = {k: v for k, v in values.items() if k in _BUILT_IN_PARAMS}
    if kind.codebook:
        extra.update(_codebook_fields(codebook_key, n_classes, int(values["codeword_length"])))
    extra.update(_arch_fields(arch, densenet_depth, densenet_growth))
    if not kind.built_in:
        extra["kind_params"] = tuple(sorted((k, v) for k, v in values.items() if k not in _BUILT_IN_PARAMS))
        extra["plugin"] = (("code", kind.code_hash()), ("origin", kind.origin), ("version", kind.version or ""))
    return ModelSpec(dataset=dataset, model=kind.name, arch=arch, train=train or TrainConfig(), **extra)


def _codebook_fields(codebook_key: str | None, n_classes: int, length: int) -> dict[str, Any]:
    from models.codebook import fingerprint, make_codebook, resolve_key

    key, is_default = resolve_key(codebook_key)
    return {
        "codeword_length": length,
        "codebook": fingerprint(make_codebook(key, n_classes, length)),
        "codebook_default_key": is_default,
    }


def _arch_fields(arch: str, depth: int, growth: int) -> dict[str, Any]:
    if arch != "densenet":
        return {}
    check(
        depth >= 10 and (depth - 4) % 6 == 0,
        f"DenseNet-BC depth {depth} must be 6n + 4 with n >= 1 (e.g. 22, 40, 100).",
    )
    check(growth >= 1, f"DenseNet growth rate {growth} must be at least 1.")
    return {"densenet_depth": depth, "densenet_growth": growth}
