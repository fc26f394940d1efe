"""L-BFGS: Szegedy et al. (2014), "Intriguing properties of neural networks"; the box-constrained L-BFGS attack
(``attacks_ext.LBFGSAttack``), targeted only. A minimal-perturbation attack: no eps ball. ``c`` is the paper's."""

from __future__ import annotations

from attacks_ext.lbfgs import SOLVERS
from bench.attacks.family import CONST, ITER, ITERATIVE, LOSS_VIEW, AttackFamily, ext_class, searches


def _build(est, a, targeted, bs):
    # saito2019 ran Cleverhans, whose constant multiplies the loss; ours (Szegedy's form) multiplies the
    # distance. The preset's c is the paper's, so the attack gets 1/c: a larger paper c, a stronger attack.
    c = a.pop("c")
    return ext_class("lbfgs")(est, targeted=targeted, batch_size=bs, initial_const=1.0 / c, **a)


LBFGS = AttackFamily(
    "lbfgs",
    "bench LBFGS (Szegedy et al., SciPy L-BFGS-B)",
    LOSS_VIEW + " times c, plus the squared L2 distance (c on the loss, as in Cleverhans and saito2019)",
    _build,
    {"binary_search_steps": 5, "max_iter": 1000},
    {"c": CONST, "binary_search_steps": (1, 100), "max_iter": ITER},
    untargeted=False,
    cost=searches,
    norm=None,
    uses_gradient=True,
    knows_model=False,
    steps=ITERATIVE,
    papers=True,
    per_image=("c",),  # each image is its own L-BFGS-B problem, so a sweep over c runs in one call
    # "scipy" (the default, L-BFGS-B as Cleverhans ran it) or "torch" (every image's solve in tensor operations on
    # the network's device: for a GPU, where SciPy's per-image arithmetic, about 10 ms per call of 128 images on
    # this project's CPU, would take longer than the network's call)
    choices={"solver": SOLVERS},
    aliases=("l_bfgs",),
    origin="bench attacks_ext",
)
