"""What ``bench ls`` prints: one row per registered thing, with where it comes from (built-in or plugin)."""

from __future__ import annotations

import math
from typing import Any

import tomllib

from bench.attacks import ATTACKS
from bench.data.datasets import DATASETS
from bench.errors import ConfigError
from bench.matrix.preset import PRESETS
from bench.matrix.settings import SETTINGS
from bench.plugins import with_version
from models.kinds import KINDS

CATEGORIES = ("models", "losses", "attacks", "presets", "settings", "datasets")


def rows(category: str) -> list[dict[str, Any]]:
    """The rows of one category; an unknown category names the valid ones."""
    makers = {
        "models": _models,
        "losses": _losses,
        "attacks": _attacks,
        "presets": _presets,
        "settings": _settings,
        "datasets": _datasets,
    }
    if category not in makers:
        raise ConfigError(f"unknown category {category!r} for `bench ls`; expected one of: {', '.join(CATEGORIES)}.")
    return makers[category]()


def _models() -> list[dict[str, Any]]:
    out = []
    for name in KINDS.names():
        kind = KINDS.get(name)
        params = ", ".join(f"{k}={v:g}" for k, v in kind.params.items())
        out.append(
            {
                "model": name,
                "from": with_version(kind.origin, kind.version),
                "scores": kind.scores,
                "loss": _name(kind.loss),
                "parameters": params or "-",
                "aliases": ", ".join(kind.aliases) or "-",
            }
        )
    return out


def _losses() -> list[dict[str, Any]]:
    return [
        {
            "loss": _name(kind.loss),
            "model": kind.name,
            "from": with_version(kind.origin, kind.version),
            "parameters": ", ".join(kind.loss_params.values()) or "-",
        }
        for kind in KINDS.values()
    ]


def _name(function) -> str:
    """A loss's name: a function's own, a partial's function's, or a callable object's class."""
    function = getattr(function, "func", function)
    return getattr(function, "__name__", type(function).__name__)


def _norm(family) -> str:
    norm = family.norm
    if norm is None:
        return "minimal"
    return "L-inf" if norm == math.inf else f"L{norm:g}"


def _attacks() -> list[dict[str, Any]]:
    out = []
    for name in ATTACKS.names():
        family = ATTACKS.get(name)
        targeted = "both" if family.targeted and family.untargeted else "yes" if family.targeted else "no"
        out.append(
            {
                "attack": name,
                "from": family.origin,
                "norm": _norm(family),
                "targeted": targeted,
                "steps": family.steps,
                "gradient": "yes" if family.uses_gradient else "no",
                "knows the model": "yes" if family.knows_model else "no",
                "implementation": family.implementation,
            }
        )
    return out


def _presets() -> list[dict[str, Any]]:
    out = []
    for name in PRESETS.names():
        source = PRESETS.get(name)
        try:
            data = tomllib.loads(source.read_text())
            description = data.get("description", "").split("\n")[0] or "-"
        except (OSError, tomllib.TOMLDecodeError) as exc:
            description = f"unreadable: {exc}"
        out.append({"preset": name, "from": source.origin, "description": description})
    return out


def _settings() -> list[dict[str, Any]]:
    return [{"setting": n, "from": "built-in", "what it measures": SETTINGS.get(n)} for n in SETTINGS.names()]


def _datasets() -> list[dict[str, Any]]:
    return [
        {"dataset": n, "from": "built-in", "classes": DATASETS.get(n).n_classes, "shape": DATASETS.get(n).shape}
        for n in DATASETS.names()
    ]
