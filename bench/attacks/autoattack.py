"""AutoAttack: Croce & Hein (2020); ART's AutoAttack as it ships, L-inf. It rebuilds a plain ``PyTorchClassifier``
from the bare module with its own losses (cross-entropy and DLR on our per-class scores), so it never sees our
loss; it runs APGD-CE, APGD-DLR, DeepFool and Square and keeps each image's first success."""

from __future__ import annotations

import math

from bench.attacks.family import ENSEMBLE, EPS, AttackFamily, art_class


def _build(est, a, targeted, bs):
    return art_class("AutoAttack")(est, norm=math.inf, targeted=targeted, batch_size=bs, **a)


AUTOATTACK = AttackFamily(
    "autoattack",
    "ART AutoAttack (stock: APGD-CE, APGD-DLR, DeepFool, Square on the bare module)",
    "the bare module's per-class scores with AutoAttack's own losses (cross-entropy, DLR): never our loss",
    _build,
    {"eps_step": 0.1},
    {"eps": EPS, "eps_step": (0.0, 1.0)},
    targeted=False,
    cost=lambda p: 4 * 100 * 5,  # four attacks, about 100 iterations and 5 restarts each
    norm=math.inf,
    uses_gradient=True,
    knows_model=True,
    steps=ENSEMBLE,
    origin="ART",
)
