"""The attack families of the matrix: what each builds, which parameters it takes, and what it sees.

Each family is described in its own module of this package (a small group of related families shares one);
``FAMILIES`` below is the one place they are registered, in the order the reports list them. Adding an
attack is one new module plus its entry there. ``bench.attacks.family`` says what a description holds.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.attacks import apgd, autoattack, bim, cw, deepfool, fgsm, lbfgs, mim, pgd, pgd_l2, pgd_margin, square
from bench.attacks.family import INTEGER_PARAMS, LOSS_VIEW, AttackFamily, Builder
from bench.registry import Registry

ATTACKS: Registry[AttackFamily] = Registry("attack")

# the papers' attacks, then those that know the model (issue: robustness you can trust); this order is the reports'
FAMILIES: tuple[AttackFamily, ...] = (
    fgsm.FGSM,
    bim.BIM,
    mim.MIM,
    pgd.PGD,
    deepfool.DEEPFOOL,
    cw.CW_L2_ART,
    cw.CW_L2,
    cw.CW_L2_CODEWORD,
    lbfgs.LBFGS,
    pgd_margin.PGD_MARGIN,
    pgd_margin.PGD_MARGIN_PRETANH,
    apgd.APGD,
    square.SQUARE,
    square.SQUARE_L2,
    autoattack.AUTOATTACK,
    pgd_l2.PGD_L2,
)

for _family in FAMILIES:
    ATTACKS.register(_family.name, _family, aliases=_family.aliases)


def attack_names(wanted: Callable[[AttackFamily], bool]) -> tuple[str, ...]:
    """The names of the registered families ``wanted`` picks, in registration order; asked when needed, so a
    family registered later (a plugin) counts."""
    return tuple(family.name for family in ATTACKS.values() if wanted(family))


__all__ = ["ATTACKS", "FAMILIES", "attack_names", "INTEGER_PARAMS", "LOSS_VIEW", "AttackFamily", "Builder"]
