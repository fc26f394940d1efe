"""Model kinds: each is one description of an output head, its decision scores and its training loss.

A kind says everything the harness needs to train, store, attack and report a model of it: how to build
its head on a backbone's features, what its per-class scores mean, its training loss and that loss's
hyperparameters with their defaults and checks, its aliases, what attacks may see of it, and where it
comes from (built in, or a plugin with its version and a hash of its code, which the model store's key
includes so that an edited loss retrains). Nothing else in the package branches on a kind's name.

Built-in kinds are the papers' (``O:SOFTMAX:CE``, ``O:SOFTMAX:MSE``, ``R:TANH:MSE``, ``hinge``, ``lmcl``) and
the kinds that change one factor of R:TANH:MSE at a time (``O:TANH:MSE``, ``R:TANH:CE``, ``R:LINEAR:MSE``; the
codeword length through the ``_dN`` suffix; docs/model-kinds.md); plugins add theirs through entry points or
``--plugin`` (``bench.plugins``), or in-process with ``register_kind``.
Every kind that is not built in has its code hash in its models' store keys.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from bench.errors import ConfigError
from bench.registry import Registry, code_fingerprint
from models import losses
from models.codebook import one_hot_codebook
from models.heads import CodewordHead, CosineHead, LinearHead

BUILT_IN = "built-in"
HeadBuilder = Callable[[int, int, Mapping[str, Any]], nn.Module]  # (feature_dim, n_classes, params) -> head
LossFunction = Callable[..., torch.Tensor]  # (scores (N, K), labels (N,), **params) -> one loss per example
Validator = Callable[[Mapping[str, Any], int], None]  # (params, n_classes); raises ConfigError


def linear_head(feature_dim: int, n_classes: int, params: Mapping[str, Any]) -> nn.Module:
    """A fully connected layer: the scores are the logits."""
    return LinearHead(feature_dim, n_classes)


def cosine_head(feature_dim: int, n_classes: int, params: Mapping[str, Any]) -> nn.Module:
    """s * cos(theta) between normalised features and normalised class weights (LMCL)."""
    return CosineHead(feature_dim, n_classes, s=params["lmcl_s"])


def codeword_head(feature_dim: int, n_classes: int, params: Mapping[str, Any]) -> nn.Module:
    """tanh outputs of length d; the scores are minus the distance to each codeword."""
    return CodewordHead(feature_dim, params["codebook"])


def linear_codeword_head(feature_dim: int, n_classes: int, params: Mapping[str, Any]) -> nn.Module:
    """Linear outputs of length d (no tanh); the scores are minus the distance to each codeword."""
    return CodewordHead(feature_dim, params["codebook"], tanh=False)


def one_hot_tanh_head(feature_dim: int, n_classes: int, params: Mapping[str, Any]) -> nn.Module:
    """tanh outputs of length n_classes; the scores are minus the distance to each one-hot target (+a/-a)."""
    return CodewordHead(feature_dim, one_hot_codebook(n_classes))


@dataclass(frozen=True)
class ModelKind:
    """One model kind. ``params`` are its hyperparameters with defaults; ``head_params`` and
    ``loss_params`` name which of them the head builder and the loss receive (``loss_params`` maps a
    parameter to the loss function's keyword)."""

    name: str
    description: str
    scores: str  # what the forward's per-class scores are, in words, for reports
    build_head: HeadBuilder
    loss: LossFunction
    params: Mapping[str, Any] = field(default_factory=dict)
    head_params: tuple[str, ...] = ()
    loss_params: Mapping[str, str] = field(default_factory=dict)
    validate: Validator | None = None
    aliases: tuple[str, ...] = ()
    codebook: bool = False  # the head is built on a keyed codebook of length ``codeword_length``
    # what attacks may see: scores, raw head outputs, codewords (target rows), pretanh (codewords behind a tanh)
    views: tuple[str, ...] = ("scores", "raw")
    origin: str = "user"  # "built-in", "plugin <distribution or file>", or "user" (registered in-process)
    version: str | None = None  # a plugin's version, part of the store key
    label: Callable[[Mapping[str, Any]], str] | None = None  # a name with its parameters (lmcl_s10_m0.3)
    pattern: str | None = None  # a regular expression whose named groups read parameters from such a name

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "loss_params", MappingProxyType(dict(self.loss_params)))
        unknown = (set(self.head_params) | set(self.loss_params)) - set(self.params) - {"codebook"}
        if unknown:
            raise ConfigError(f"model kind {self.name!r} uses parameters it does not declare: {sorted(unknown)}.")

    @property
    def built_in(self) -> bool:
        return self.origin == BUILT_IN

    def code_hash(self) -> str:
        """A hash of the files that define the loss, the head builder and the checks: an edited plugin gets a
        new store key."""
        return code_fingerprint(self.loss, self.build_head, *([self.validate] if self.validate else []))

    def resolve(self, given: Mapping[str, Any], n_classes: int) -> dict[str, Any]:
        """The kind's parameters: defaults overridden by ``given``, checked; unknown names are refused."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            expected = ", ".join(self.params) or "none"
            raise ConfigError(f"model {self.name!r} has no parameter {unknown[0]!r}; expected: {expected}.")
        values = {**self.params, **given}
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"model {self.name!r} parameter {name}={value!r} must be a finite number.")
            values[name] = _like(self.params[name], value)
        if self.validate is not None:
            self.validate(values, n_classes)
        return values


def _like(default: Any, value: float) -> float:
    """``value`` in its default's type, so 10 and 10.0 give one store key (a whole-number parameter stays int)."""
    if isinstance(default, int) and float(value).is_integer():
        return int(value)
    return float(value)


def check(ok: bool, message: str) -> None:
    """Raise ConfigError(message) unless ``ok``: the one-line checks of kinds and specs."""
    if not ok:
        raise ConfigError(message)


def _check_codeword(params: Mapping[str, Any], n_classes: int) -> None:
    length = params["codeword_length"]
    check(length == int(length), f"codeword length {length} must be a whole number.")
    check(
        length >= n_classes,
        f"codeword length {length} is below the number of classes ({n_classes}); saito2019 uses 128.",
    )


def _check_lmcl(params: Mapping[str, Any], n_classes: int) -> None:
    check(params["lmcl_s"] > 0, f"LMCL scale s={params['lmcl_s']} must be above 0 (vu2018 uses 10).")
    check(
        0 <= params["lmcl_m"] <= 2, f"LMCL margin m={params['lmcl_m']} must be in [0, 2] (cosines differ by at most 2)."
    )


DEFAULT_LENGTH = 128  # saito2019's codeword length; the model of this length keeps its kind's bare name
CODEWORD_VIEWS = ("scores", "raw", "codewords", "pretanh")


def length_naming(name: str, aliases: tuple[str, ...]) -> dict[str, Any]:
    """``label`` and ``pattern`` of a codeword kind: ``NAME_d64`` (or an alias with ``_d64``) is codeword length 64;
    the default length keeps the bare name, so its models keep their names and store keys."""

    def label(params: Mapping[str, Any]) -> str:
        length = int(params["codeword_length"])
        return name if length == DEFAULT_LENGTH else f"{name}_d{length}"

    names = "|".join(re.escape(n) for n in (name, *aliases))
    return {"label": label, "pattern": rf"^(?:{names})_d(?P<codeword_length>[0-9]+)$"}


def codeword_kind(
    name: str,
    description: str,
    build_head: HeadBuilder,
    loss: LossFunction,
    *,
    aliases: tuple[str, ...],
    scores: str = "negative euclidean distance from the tanh output to each codeword",
    loss_params: Mapping[str, str] | None = None,
    views: tuple[str, ...] = CODEWORD_VIEWS,
) -> ModelKind:
    """A built-in kind on a keyed codebook of ``codeword_length`` (default 128), named with ``_dN`` for other
    lengths; the scores are minus the distance from the head's output to each codeword."""
    return ModelKind(
        name,
        description,
        scores,
        build_head,
        loss,
        params={"codeword_length": DEFAULT_LENGTH},
        loss_params=loss_params or {},
        validate=_check_codeword,
        aliases=aliases,
        codebook=True,
        views=views,
        origin=BUILT_IN,
        **length_naming(name, aliases),
    )


KINDS: Registry[ModelKind] = Registry("model")


def register_kind(kind: ModelKind) -> ModelKind:
    """Add a model kind (built-in or plugin) under its name and aliases; a name taken twice is refused."""
    return KINDS.register(kind.name, kind, aliases=kind.aliases)


def built_in_kinds() -> list[str]:
    return [name for name in KINDS.names() if KINDS.get(name).built_in]


register_kind(
    ModelKind(
        "O:SOFTMAX:CE",
        "softmax outputs, one-hot targets, cross-entropy",
        "logits",
        linear_head,
        losses.cross_entropy,
        aliases=("softmax_ce", "cross_entropy", "ce"),
        origin=BUILT_IN,
    )
)
register_kind(
    ModelKind(
        "O:SOFTMAX:MSE",
        "softmax outputs, one-hot targets, MSE",
        "logits",
        linear_head,
        losses.softmax_mse,
        aliases=("softmax_mse", "mse"),
        origin=BUILT_IN,
    )
)
register_kind(
    codeword_kind(
        "R:TANH:MSE",
        "tanh outputs of length d, MSE to secret random codewords, nearest codeword wins",
        codeword_head,
        losses.codeword_mse,
        loss_params={"codeword_length": "codeword_length"},
        aliases=("tanh_mse", "codeword_mse", "codeword"),
    )
)
register_kind(
    ModelKind(
        "hinge",
        "multi-class hinge loss, margin 1 (vu2018)",
        "logits",
        linear_head,
        losses.hinge,
        aliases=("multi_class_hinge",),
        origin=BUILT_IN,
    )
)
register_kind(
    ModelKind(
        "lmcl",
        "large margin cosine loss (CosFace)",
        "s * cosine to each class weight",
        cosine_head,
        losses.lmcl,
        params={"lmcl_s": 10.0, "lmcl_m": 0.3},
        head_params=("lmcl_s",),
        loss_params={"lmcl_s": "s", "lmcl_m": "m"},
        validate=_check_lmcl,
        aliases=("cosface",),
        label=lambda p: f"lmcl_s{p['lmcl_s']:g}_m{p['lmcl_m']:g}",
        pattern=r"^lmcl_s(?P<lmcl_s>[0-9.]+)_m(?P<lmcl_m>[0-9.]+)$",
        origin=BUILT_IN,
    )
)
register_kind(
    ModelKind(
        "O:TANH:MSE",
        "tanh outputs of length n_classes, MSE to one-hot targets (+a at the class, -a elsewhere, a = 1/sqrt(3)), "
        "nearest target wins",
        "negative euclidean distance from the tanh output to each one-hot target (+a at the class, -a elsewhere)",
        one_hot_tanh_head,
        losses.one_hot_tanh_mse,
        aliases=("tanh_one_hot_mse", "one_hot_tanh_mse"),
        views=CODEWORD_VIEWS,
        origin=BUILT_IN,
    )
)
register_kind(
    codeword_kind(
        "R:TANH:CE",
        "tanh outputs of length d, cross-entropy over softmax(-distance to secret random codewords), nearest wins",
        codeword_head,
        losses.codeword_cross_entropy,
        aliases=("tanh_ce", "codeword_ce"),
    )
)
register_kind(
    codeword_kind(
        "R:LINEAR:MSE",
        "linear outputs of length d (no tanh), MSE to secret random codewords, nearest codeword wins",
        linear_codeword_head,
        losses.codeword_mse,
        scores="negative euclidean distance from the linear output to each codeword",
        loss_params={"codeword_length": "codeword_length"},
        aliases=("linear_mse", "linear_codeword_mse"),
        views=("scores", "raw", "codewords"),  # no tanh, so no pre-tanh view
    )
)


def kind_from_loss(name: str, loss: LossFunction, origin: str, version: str | None = None) -> ModelKind:
    """A model kind for a bare loss plugin: a linear head whose logits the loss is written on."""
    doc = inspect.getdoc(loss) or f"the {name} loss on logits"
    return ModelKind(name, doc.splitlines()[0], "logits", linear_head, loss, origin=origin, version=version)
