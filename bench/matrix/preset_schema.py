"""The one schema of a preset file: every key it may hold and what its value must be, checked once when it is
read, so a typo (``restrats = 4``) or a value of the wrong kind (``fgsm = "ten"``) is refused with the file and
the key before any work, instead of being ignored or failing deep inside a run."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from typing import Any

from bench.attacks import ATTACKS
from bench.attacks.family import AttackFamily
from bench.errors import ConfigError, UnknownNameError

Check = Callable[[Any], str | None]  # None when the value fits, else what was expected


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _whole(low: int) -> Check:
    def check(v: Any) -> str | None:
        return None if isinstance(v, int) and not isinstance(v, bool) and v >= low else f"a whole number >= {low}"

    return check


def _text(v: Any) -> str | None:
    return None if isinstance(v, str) else "a string"


def _flag(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def _num(v: Any) -> str | None:
    return None if _number(v) else "a finite number"


def _names(v: Any) -> str | None:
    ok = isinstance(v, list) and v and all(isinstance(x, str) and x for x in v)
    return None if ok else 'a non-empty list of names, e.g. ["O:SOFTMAX:CE", "hinge"]'


def training_seeds_problem(v: Any) -> str | None:
    """Training seeds (the preset's ``training_seeds``, ``--training-seeds``): each its own model (models/seeds.py
    names them), so none may repeat; None when ``v`` fits, else what was expected."""
    whole = isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v)
    ok = whole and v and len(set(v)) == len(v)
    return None if ok else "a non-empty list of distinct whole numbers >= 0, e.g. [0, 1, 2]"


def _strings(v: Any) -> str | None:
    return None if isinstance(v, list) and all(isinstance(x, str) for x in v) else 'a list of strings, e.g. ["x"]'


TOP: dict[str, Check] = {
    "name": _text,
    "description": _text,
    "inherit": _text,
    "models": _names,
    "arch": _text,
    "seed": _whole(0),
    "training_seeds": training_seeds_problem,
    "transfer_source": _text,
    "diagnostic_samples": _whole(1),
    "shard_images": _whole(0),
    "densenet_depth": _whole(10),  # 6n + 4, checked where the model is specified (models/spec.py)
    "densenet_growth": _whole(1),
}
TABLES = ("samples", "params", "training", "model_params", "group")  # checked by their own functions below
GROUP: dict[str, Check] = {
    "tables": _strings,
    "setting": _text,
    "attack": _text,
    "params": lambda v: None,  # checked as a table of numbers and words in _group
    "sweep": lambda v: None,  # checked in _sweep
    "models": _names,
    "transfer_matrix": _flag,
    "variant": _text,
}
TRAINING: dict[str, Check] = {
    "epochs": _whole(1),
    "batch_size": _whole(1),
    "lr": _num,
    "seed": _whole(0),
    "optimizer": _text,
    "schedule": _text,
    "n_train": _whole(1),
    "adversarial": lambda v: None,  # checked as its own table
}
ADVERSARIAL: dict[str, Check] = {
    "eps": _num,
    "eps_step": _num,
    "max_iter": _whole(1),
    "method": _text,  # pgd (the default) or fgsm_rs; models.spec.AdversarialTraining checks the rest
    "alpha": _num,
    "guard_drop": _num,
    "guard_checks": _whole(1),
    "clip_start": _flag,  # fgsm_rs: clip the random start to [0, 1] before the gradient (default false, Wong et al.)
}
REQUIRED = ("name", "models", "samples", "group")
GROUP_REQUIRED = ("setting", "attack", "sweep")


class _File:
    """One preset file being checked: every error names it, the key's place in it, and the value found."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, value: Any, expected: str) -> ConfigError:
        return ConfigError(f"preset {self.source}: {where} = {_short(value)}; expected {expected}.")

    def keys(self, table: dict[str, Any], valid: list[str], where: str, what: str = "one of") -> None:
        for key in table:
            if key not in valid:
                nearest = difflib.get_close_matches(key, valid, n=1, cutoff=0.0)  # the nearest, however far
                hint = f" Did you mean {nearest[0]!r}?" if nearest else ""
                raise ConfigError(
                    f"preset {self.source}: unknown key {key!r} in {where}; expected {what}: {', '.join(valid)}.{hint}"
                )

    def values(self, table: dict[str, Any], checks: dict[str, Check], prefix: str) -> None:
        for key, value in table.items():
            expected = checks[key](value)
            if expected:
                raise self.fail(prefix + key, value, expected)

    def table(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, value, f"a table ([{where}] or {{ ... }})")
        return value

    def numbers(self, value: Any, where: str) -> None:
        for key, v in self.table(value, where).items():
            if not _number(v):
                raise self.fail(f"{where}.{key}", v, "a finite number")

    def attack_params(self, value: Any, where: str, attack: str) -> None:
        """Numbers, and words for the parameters of ``attack`` that take one (its family's ``choices``). Ranges and
        names are checked when cells are made; an attack not registered is refused there, by its name."""
        family = _family(attack)
        for key, v in self.table(value, where).items():
            if family is None:
                ok, expected = _number(v) or (isinstance(v, str) and bool(v)), "a finite number or a word"
            elif key in family.choices:
                expected = family.word_problem(key, v)
                ok = expected is None
            else:
                words = f" ({attack} takes a word only for {', '.join(family.choices)})" if family.choices else ""
                ok, expected = _number(v), f"a finite number{words}"
            if not ok:
                raise self.fail(f"{where}.{key}", v, expected)


def _family(attack: str) -> AttackFamily | None:
    """The registered family of ``attack`` (its word-valued parameters are its ``choices``); None for a name not
    registered."""
    try:
        return ATTACKS.get(attack)
    except UnknownNameError:
        return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_file(data: dict[str, Any], source: str) -> None:
    """Every key of one preset file (a base it inherits is checked on its own) and the kind of every value."""
    f = _File(source)
    f.keys(data, [*TOP, *TABLES], "the preset's top level")
    f.values({k: v for k, v in data.items() if k in TOP}, TOP, "")
    for attack, n in f.table(data.get("samples", {}), "samples").items():
        if _whole(1)(n):
            raise f.fail(f"samples.{attack}", n, "a whole number of images, at least 1")
    for attack, values in f.table(data.get("params", {}), "params").items():
        f.attack_params(values, f"params.{attack}", attack)
    for model, values in f.table(data.get("model_params", {}), "model_params").items():
        f.numbers(values, f"model_params.{model}")
    training = f.table(data.get("training", {}), "training")
    f.keys(training, list(TRAINING), "[training]", "TrainConfig fields")
    f.values(training, TRAINING, "training.")
    adversarial = f.table(training.get("adversarial", {}), "training.adversarial")
    f.keys(adversarial, list(ADVERSARIAL), "[training.adversarial]")
    f.values(adversarial, ADVERSARIAL, "training.adversarial.")
    if "group" in data:
        groups = data["group"]
        if not isinstance(groups, list):
            raise ConfigError(
                f"preset {source}: 'group' is a single table; expected an array of tables, written [[group]] "
                "(two brackets) before each group."
            )
        if not groups:
            raise ConfigError(f"preset {source}: group = []; expected at least one [[group]] of cells.")
        for i, group in enumerate(groups, 1):
            _group(f, group, i)


def _group(f: _File, group: Any, i: int) -> None:
    where = f"[[group]] {i}"
    group = f.table(group, where)
    f.keys(group, list(GROUP), where)
    missing = [k for k in GROUP_REQUIRED if k not in group]
    if missing:
        raise ConfigError(
            f"preset {f.source}: {where} lacks {', '.join(missing)}; a group needs setting, attack, sweep."
        )
    f.values(group, GROUP, f"{where} ")
    f.attack_params(group.get("params", {}), f"{where} params", group["attack"])
    _sweep(f, group["sweep"], where)


def _sweep(f: _File, sweep: Any, where: str) -> None:
    """One parameter and its non-empty list of values, e.g. ``sweep = { eps = [0.1, 0.2] }``."""
    expected = "one parameter and a non-empty list of numbers, e.g. sweep = { eps = [0.1, 0.2] }"
    if not isinstance(sweep, dict) or len(sweep) != 1:
        raise f.fail(f"{where} sweep", sweep, expected)
    ((param, values),) = sweep.items()
    if not isinstance(values, list) or not values or not all(_number(v) for v in values):
        raise f.fail(f"{where} sweep", sweep, expected)


def check_complete(data: dict[str, Any], source: str) -> None:
    """The keys a preset needs, after a base it inherits is merged in."""
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ConfigError(
            f"preset {source} lacks {', '.join(missing)}; a preset needs {', '.join(REQUIRED)} "
            "(see bench/matrix/presets/paper.toml)."
        )
