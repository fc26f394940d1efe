"""The attack families of the matrix: what each builds, which parameters it takes, and what it sees.

Each family is described in its own module of this package (a small group of related families shares one);
``FAMILIES`` below is the one place they are registered, in the order the reports list them. Adding an
attack is one new module plus its entry there. ``bench.attacks.family`` says what a description holds.
"""

from __future__ import annotations

from bench.attacks import apgd, autoattack, bim, cw, deepfool, fgsm, lbfgs, mim, pgd, pgd_margin, square
from bench.attacks.family import INTEGER_PARAMS, LOSS_VIEW, AttackFamily, Builder
from bench.registry import Registry

ATTACKS: Registry[AttackFamily] = Registry("attack")

# (family, aliases): the papers' attacks, then those that know the model (issue: robustness you can trust)
FAMILIES: tuple[tuple[AttackFamily, tuple[str, ...]], ...] = (
    (fgsm.FGSM, ()),
    (bim.BIM, ()),
    (mim.MIM, ()),
    (pgd.PGD, ("madry",)),
    (deepfool.DEEPFOOL, ()),
    (cw.CW_L2_ART, ()),
    (cw.CW_L2, ()),
    (cw.CW_L2_CODEWORD, ()),
    (lbfgs.LBFGS, ("l_bfgs",)),
    (pgd_margin.PGD_MARGIN, ()),
    (pgd_margin.PGD_MARGIN_PRETANH, ()),
    (apgd.APGD, ()),
    (square.SQUARE, ()),
    (square.SQUARE_L2, ()),
    (autoattack.AUTOATTACK, ()),
)

for _family, _aliases in FAMILIES:
    ATTACKS.register(_family.name, _family, aliases=_aliases)

__all__ = ["ATTACKS", "FAMILIES", "INTEGER_PARAMS", "LOSS_VIEW", "AttackFamily", "Builder"]
