"""Craft groups: the crafts of a matrix that differ only in a swept value, crafted together in full batches.

A craft is what a cell's ``craft_key`` names: one attack with its parameters on one model's images. The crafts
of a group share the model crafted on, the attack, its fixed parameters, targeted or not (unless the attack takes
that per image, as CW-L2 does), the sample set and the seed; they differ in the value of one swept parameter (CW's
c, the eps of BIM/MIM/margin PGD, ...). Where the attack family takes that parameter per image
(``AttackFamily.per_image``), the group is crafted in one call over one copy of the images per value, in batches of
``--batch-size`` (20 images x 4 values of c x untargeted and targeted run as one pool of 160, batches of 128,
instead of eight batches of 20); otherwise each value is its own call, as before. FGSM's group shares one gradient
sign over all its eps. Every cell whose examples come from the group's crafts (white-box, transfer from the same
source, tailored) belongs to it, so a group is the unit of work of a run: a plain value, handed to
``bench.matrix.group_run.run_group`` with the models it needs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from bench.attacks import ATTACKS
from bench.matrix.plan import Cell, digest, models_needed


def crafted_together(crafts: Sequence[Cell]) -> bool:
    """Whether these crafts of one sweep go in one call: there are several, and their family takes the swept
    parameter per image (``AttackFamily.per_image``)."""
    return len(crafts) > 1 and crafts[0].param in ATTACKS.get(crafts[0].attack).per_image


@dataclass(frozen=True)
class CraftGroup:
    crafts: tuple[Cell, ...]  # one cell per craft key, in sweep order: it names the craft
    cells: tuple[Cell, ...]  # every cell scored on these crafts

    @property
    def attack(self) -> str:
        return self.crafts[0].attack

    @property
    def craft_model(self) -> str:
        return self.crafts[0].craft_model

    @property
    def param(self) -> str:
        return self.crafts[0].param

    @property
    def batched(self) -> bool:
        """Crafted in one call over all its values (the family takes the swept parameter per image)."""
        return crafted_together(self.crafts)

    @property
    def key(self) -> str:
        """Names the group (a hash of its crafts' keys): the key of its Dask task."""
        return digest(sorted(c.craft_key for c in self.crafts))

    @property
    def models(self) -> set[str]:
        """The labels of every model the group needs: the one crafted on and those scored."""
        return models_needed(self.cells)

    @property
    def passes(self) -> float:
        """Gradient passes the group's crafts take at most (``AttackFamily.cost``): what orders the work, longest
        first, so that a distributed run does not end on one long group while the other workers wait."""
        return sum(self.bound(c) for c in self.crafts) * self.crafts[0].n_samples

    def bound(self, craft: Cell) -> float:
        """Gradient passes per image that one of the group's crafts takes at most (``AttackFamily.cost``)."""
        if self.attack == "fgsm":
            return 1 / len(self.crafts)  # one gradient for the sweep, shared by its crafts
        family = ATTACKS.get(self.attack)
        return family.cost({**family.defaults, **dict(craft.params)})

    def describe(self) -> str:
        mixed = len({c.targeted for c in self.crafts}) > 1
        values = ", ".join(("targeted " if mixed and c.targeted else "") + f"{c.value:g}" for c in self.crafts)
        how = "one call" if self.batched else f"{len(self.crafts)} calls"
        return f"{self.attack} on {self.craft_model} [{self.param}={values}] ({how}, {len(self.cells)} cells)"


def _group_key(cell: Cell) -> str:
    """What the crafts of one group share: the craft key without the swept value, and without targeted or not where
    the family takes that per image (a model's untargeted and targeted CW sweeps fill one call's batches)."""
    fixed = {k: v for k, v in cell.params if k != cell.param}
    aim = None if "targeted" in ATTACKS.get(cell.attack).per_image else cell.targeted
    shared = [cell.craft_model_key, cell.attack, cell.attack_code, aim, cell.n_samples, cell.seed, cell.shard]
    return json.dumps([*shared, cell.dataset, cell.param, sorted(fixed.items())])


def craft_groups(cells: list[Cell]) -> list[CraftGroup]:
    """The cells' craft groups, in a stable order (attack, model crafted on, sweep). A craft shared by cells of two
    sweeps (the same parameters reached by sweeping eps in one group and eps_step in another) joins the first."""
    group_of_craft: dict[str, str] = {}
    crafts: dict[str, dict[str, Cell]] = {}
    members: dict[str, list[Cell]] = {}
    for cell in sorted(cells, key=lambda c: (c.source is not None, c.attack, c.craft_model, c.value, c.name)):
        group = group_of_craft.setdefault(cell.craft_key, _group_key(cell))
        crafts.setdefault(group, {}).setdefault(cell.craft_key, cell)
        members.setdefault(group, []).append(cell)
    in_order = lambda c: (c.targeted, c.value)  # noqa: E731 - untargeted first, then by swept value
    groups = [CraftGroup(tuple(sorted(crafts[g].values(), key=in_order)), tuple(members[g])) for g in crafts]
    return sorted(groups, key=lambda g: (g.attack, g.craft_model, g.crafts[0].targeted, g.crafts[0].value))
