"""The full configuration of a model, validated once into frozen objects whose hash keys the model store.

Model names are the papers': ``O:SOFTMAX:CE``, ``O:SOFTMAX:MSE``, ``R:TANH:MSE``, ``hinge``,
``lmcl`` (also ``lmcl_s10_m0.3`` as vu2018 writes it), with lower_snake aliases.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bench.errors import ConfigError
from bench.registry import Registry


@dataclass(frozen=True)
class ModelKind:
    name: str
    head: str  # linear | codeword | cosine
    loss: str  # a key of models.losses.LOSSES
    scores: str  # what predict() returns, in words, for reports
    description: str


KINDS: Registry[ModelKind] = Registry("model")
KINDS.register(
    "O:SOFTMAX:CE",
    ModelKind("O:SOFTMAX:CE", "linear", "cross_entropy", "logits", "softmax outputs, one-hot targets, cross-entropy"),
    aliases=("softmax_ce", "cross_entropy", "ce"),
)
KINDS.register(
    "O:SOFTMAX:MSE",
    ModelKind("O:SOFTMAX:MSE", "linear", "softmax_mse", "logits", "softmax outputs, one-hot targets, MSE"),
    aliases=("softmax_mse", "mse"),
)
KINDS.register(
    "R:TANH:MSE",
    ModelKind(
        "R:TANH:MSE",
        "codeword",
        "codeword_mse",
        "negative euclidean distance from the tanh output to each codeword",
        "tanh outputs of length d, MSE to secret random codewords, nearest codeword wins",
    ),
    aliases=("tanh_mse", "codeword_mse", "codeword"),
)
KINDS.register(
    "hinge",
    ModelKind("hinge", "linear", "hinge", "logits", "multi-class hinge loss, margin 1 (vu2018)"),
    aliases=("multi_class_hinge",),
)
KINDS.register(
    "lmcl",
    ModelKind("lmcl", "cosine", "lmcl", "s * cosine to each class weight", "large margin cosine loss (CosFace)"),
    aliases=("cosface",),
)

ARCHS = Registry[str]("architecture")
ARCHS.register("cnn", "vu2018 Table I CNN", aliases=("table1_cnn",))
ARCHS.register("densenet", "DenseNet-BC", aliases=("densenet_bc",))

_LMCL_NAME = re.compile(r"^lmcl_s(?P<s>[0-9.]+)_m(?P<m>[0-9.]+)$", re.IGNORECASE)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def check_eps(name: str, value: float) -> None:
    _check(
        math.isfinite(value) and 0.0 <= value <= 1.0,
        f"{name}={value} is outside [0, 1]; pixels are in [0, 1], so a perturbation size must be too.",
    )


@dataclass(frozen=True)
class AdversarialTraining:
    """PGD adversarial training (Madry et al.; vu2018 uses k=40, step 0.01, eps 0.3): every batch is
    replaced by PGD examples from a random start inside the L-inf ball."""

    eps: float = 0.3
    eps_step: float = 0.01
    max_iter: int = 40

    def __post_init__(self) -> None:
        check_eps("adversarial training eps", self.eps)
        check_eps("adversarial training eps_step", self.eps_step)
        _check(self.eps_step > 0, f"adversarial training eps_step={self.eps_step} must be above 0.")
        _check(self.max_iter >= 1, f"adversarial training max_iter={self.max_iter} must be at least 1.")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 6
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    optimizer: str = "adam"
    schedule: str = "cosine"  # learning rate annealed to 0 over all steps
    adversarial: AdversarialTraining | None = None
    n_train: int | None = None  # a seeded subset of the training split (tests, quick runs); None = all of it

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, f"epochs={self.epochs} must be at least 1.")
        _check(self.batch_size >= 1, f"batch_size={self.batch_size} must be at least 1.")
        _check(
            math.isfinite(self.lr) and self.lr > 0,
            f"learning rate lr={self.lr} must be a positive number (Adam's usual value is 1e-3).",
        )
        _check(self.optimizer == "adam", f"optimizer={self.optimizer!r} is not supported; expected 'adam'.")
        _check(self.schedule in ("cosine", "constant"), f"schedule={self.schedule!r}; expected cosine or constant.")
        _check(self.n_train is None or self.n_train >= 1, f"n_train={self.n_train} must be at least 1 image.")


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

    @property
    def kind(self) -> ModelKind:
        return KINDS.get(self.model)

    @property
    def loss_label(self) -> str:
        """The model as vu2018's tables name losses: cross_entropy, hinge, lmcl_s10_m0.3; else the paper name."""
        if self.model == "lmcl":
            return f"lmcl_s{self.lmcl_s:g}_m{self.lmcl_m:g}"
        return self.model

    @property
    def name(self) -> str:
        """A readable name, e.g. ``mnist/cnn/R:TANH:MSE`` or ``mnist/cnn+pgd_at/lmcl_s10_m0.3``."""
        arch = self.arch + ("+pgd_at" if self.train.adversarial else "")
        return f"{self.dataset}/{arch}/{self.loss_label}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        train = dict(data["train"])
        adv = train.get("adversarial")
        train["adversarial"] = AdversarialTraining(**adv) if adv else None
        return cls(**{**data, "train": TrainConfig(**train)})

    def key(self) -> str:
        """A hash of the whole configuration: the model store's key."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def with_train(self, **changes: Any) -> ModelSpec:
        return replace(self, train=replace(self.train, **changes))


def make_spec(
    dataset: str,
    model: str,
    arch: str = "cnn",
    train: TrainConfig | None = None,
    *,
    codeword_length: int = 128,
    codebook_key: str | None = None,
    lmcl_s: float = 10.0,
    lmcl_m: float = 0.3,
    densenet_depth: int = 40,
    densenet_growth: int = 12,
    n_classes: int = 10,
) -> ModelSpec:
    """Validate names and hyperparameters into a ModelSpec; raises a clear error before any work starts."""
    from bench.datasets import DATASETS  # local: keeps models importable without torchvision at import time
    from models.codebook import fingerprint, make_codebook, resolve_key

    dataset = DATASETS.canonical(dataset)
    match = _LMCL_NAME.match(model)
    if match:
        model, lmcl_s, lmcl_m = "lmcl", float(match["s"]), float(match["m"])
    kind = KINDS.get(model)
    arch = ARCHS.canonical(arch)
    extra: dict[str, Any] = {}
    if kind.head == "codeword":
        _check(
            codeword_length >= n_classes,
            f"codeword length {codeword_length} is below the number of classes ({n_classes}); saito2019 uses 128.",
        )
        key, is_default = resolve_key(codebook_key)
        extra.update(
            codeword_length=codeword_length,
            codebook=fingerprint(make_codebook(key, n_classes, codeword_length)),
            codebook_default_key=is_default,
        )
    if kind.head == "cosine":
        _check(lmcl_s > 0, f"LMCL scale s={lmcl_s} must be above 0 (vu2018 uses 10).")
        _check(0 <= lmcl_m <= 2, f"LMCL margin m={lmcl_m} must be in [0, 2] (cosines differ by at most 2).")
        extra.update(lmcl_s=float(lmcl_s), lmcl_m=float(lmcl_m))
    if arch == "densenet":
        _check(
            densenet_depth >= 10 and (densenet_depth - 4) % 6 == 0,
            f"DenseNet-BC depth {densenet_depth} must be 6n + 4 with n >= 1 (e.g. 22, 40, 100).",
        )
        _check(densenet_growth >= 1, f"DenseNet growth rate {densenet_growth} must be at least 1.")
        extra.update(densenet_depth=densenet_depth, densenet_growth=densenet_growth)
    return ModelSpec(dataset=dataset, model=kind.name, arch=arch, train=train or TrainConfig(), **extra)
