"""Models of other results stores shown beside a report's own (``bench report --beside``): the vu2018 report puts
the models trained by FGSM-RS (their own store) next to the PGD-trained ones, on the same images.

Each store keeps its own models' names, except where a name is already shown: a model of a later store whose label
an earlier store uses is named by its training recipe (``models.seeds.recipe_tagged``: ``O:SOFTMAX:CE+fgsm_rs_at``),
in its cells, as a transfer source and in the cells' names, so the two are never taken for seeds of one model."""

from __future__ import annotations

import dataclasses

from bench.errors import ConfigError
from bench.results.store import Record
from models.seeds import recipe_tagged, split_recipe
from models.spec import DEFAULT_ARCH, AdversarialTraining


def training_recipe(meta: dict) -> str:
    """A stored model's training recipe as one word: ``fgsm_rs_at`` or ``pgd_at`` when adversarially trained
    (the method of its ``[training.adversarial]``), ``fgsm_rs_clipped_at`` for FGSM-RS from a start clipped to
    [0, 1] (every FGSM-RS model stored before ``clip_start`` existed), ``plain`` otherwise."""
    adversarial = meta["spec"]["train"].get("adversarial")
    if not adversarial:
        return "plain"
    stored = AdversarialTraining.from_stored(adversarial)  # the one reading of a missing clip_start
    return "fgsm_rs_clipped_at" if stored.clip_start else f"{stored.method}_at"


def beside_recipe(meta: dict) -> str:
    """``training_recipe`` with the network in front where it is not the zoo's default ``cnn``
    (``small_cnn_fgsm_rs_at``), so one recipe on two networks never gives two models one name."""
    arch, recipe = meta["spec"]["arch"], training_recipe(meta)
    return recipe if arch == DEFAULT_ARCH else f"{arch}_{recipe}"


def named_beside(records: list[Record], metas: list[dict], shown: set[str], store: str) -> list[Record]:
    """``records`` of one store, their models renamed by recipe where ``shown`` (the names already in the report)
    holds their name; ``metas`` are that store's models, which say each recipe."""
    recipes = {m["key"]: beside_recipe(m) for m in metas}
    keys = {r.model: r.model_key for r in records} | {r.source: r.config.get("source_key") for r in records if r.source}
    renamed = {}
    for label, key in keys.items():
        if label not in shown:
            continue
        if key not in recipes:
            raise ConfigError(
                f"model {label!r} of the results store {store} has a name the report already shows, and the store "
                "keeps no metadata to name its training recipe: expected a store written by a bench that keeps its "
                "models' metadata (run its matrix again to add it)."
            )
        renamed[label] = recipe_tagged(label, recipes[key])
    clash = sorted(set(renamed.values()) & shown)
    if clash:
        raise ConfigError(f"models {clash} of the results store {store}: already shown by another store.")
    return [_renamed(r, renamed) for r in records] if renamed else records


def _renamed(record: Record, renamed: dict[str, str]) -> Record:
    head, _, models = record.name.rpartition("/")
    name = head + "/" + "->".join(renamed.get(m, m) for m in models.split("->"))
    source = renamed.get(record.source, record.source) if record.source else record.source
    return dataclasses.replace(record, model=renamed.get(record.model, record.model), source=source, name=name)


def shown_names(records: list[Record]) -> set[str]:
    """Every model name ``records`` show, as a model or as a transfer source."""
    return {r.model for r in records} | {r.source for r in records if r.source}


def beside_note(records: list[Record], stores: list[str]) -> str:
    """The report header's sentence on where the models shown beside come from and which were renamed."""
    if not stores:
        return ""
    renamed = sorted({m for m in shown_names(records) if split_recipe(m)[1] is not None})
    said = ", ".join(f"`{s}`" for s in stores)
    return f" Beside this store's models: those of {said} (`--beside`)" + (
        f"; where this store uses the same label, theirs is named by its training recipe: {', '.join(renamed)}."
        if renamed
        else "."
    )
