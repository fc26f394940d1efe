"""The one naming rule for models trained with several seeds: the model of training seed ``s`` is ``<label>@s<s>``
(``O:SOFTMAX:CE@s1``, ``lmcl_s10_m0.3@s2``) wherever a model name appears (cells, the results store, tables).

A preset with one training seed (or none) keeps the plain label, so the names and keys of runs made before
training seeds existed do not change. Everything that builds or reads such a name goes through these
functions.

A report that shows the models of two results stores side by side (``bench report --beside``) names a model of
the second store whose label the first already uses by its training recipe: ``O:SOFTMAX:CE+fgsm_rs_at`` (and
``O:SOFTMAX:CE+fgsm_rs_at@s1`` for a seed). ``kind_label`` reads the model kind back from any of these names."""

from __future__ import annotations

import re

from bench.errors import ConfigError

SEPARATOR = "@s"
_SEEDED = re.compile(r"^(?P<label>.+)@s(?P<seed>0|[1-9][0-9]*)$")
RECIPE_SEPARATOR = "+"
_RECIPE = re.compile(r"^(?P<label>.+)\+(?P<recipe>[a-z][a-z0-9_]*)$")


def seeded_name(label: str, seed: int) -> str:
    """The name of ``label``'s model trained with ``seed``: ``seeded_name("O:SOFTMAX:CE", 1) == "O:SOFTMAX:CE@s1"``."""
    if not isinstance(label, str) or not label or split_seeded_name(label)[1] is not None:
        raise ConfigError(f"model label {label!r}: expected a non-empty label without a seed (such as 'O:SOFTMAX:CE').")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"training seed {seed!r} of model {label!r}: expected a whole number >= 0.")
    return f"{label}{SEPARATOR}{seed}"


def split_seeded_name(name: str) -> tuple[str, int | None]:
    """(base label, training seed) of a model name; the seed is None for a name without one (``"hinge"``), and
    a name whose seed is not written as ``seeded_name`` writes it (``X@s01``, ``X@s``) is taken as unseeded."""
    match = _SEEDED.match(name)
    if match is None:
        return name, None
    return match["label"], int(match["seed"])


def recipe_tagged(name: str, recipe: str) -> str:
    """``name`` with its training recipe: ``recipe_tagged("hinge@s1", "fgsm_rs_at") == "hinge+fgsm_rs_at@s1"``."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", recipe or ""):
        raise ConfigError(f"training recipe {recipe!r}: expected a lower-case word such as 'fgsm_rs_at'.")
    label, seed = split_seeded_name(name)
    tagged = f"{label}{RECIPE_SEPARATOR}{recipe}"
    return tagged if seed is None else seeded_name(tagged, seed)


def split_recipe(name: str) -> tuple[str, str | None]:
    """(kind label, training recipe) of a model name without its seed: ``("O:SOFTMAX:CE", "fgsm_rs_at")`` for
    ``O:SOFTMAX:CE+fgsm_rs_at@s1``; the recipe is None for a name without one."""
    label = split_seeded_name(name)[0]
    match = _RECIPE.match(label)
    return (match["label"], match["recipe"]) if match else (label, None)


def kind_label(name: str) -> str:
    """The model kind's label of a model name, without its seed or recipe: ``O:SOFTMAX:CE+fgsm_rs_at@s1`` and
    ``O:SOFTMAX:CE@s1`` are both ``O:SOFTMAX:CE``."""
    return split_recipe(name)[0]
