"""PGD in the L2 ball: Madry et al. (2018), "Towards Deep Learning Models Resistant to Adversarial Attacks", with
the L2 norm (ART's ProjectedGradientDescent, ``norm=2``), on the model's own training loss.

From one uniform random start in the L2 ball of radius ``eps``, ``max_iter`` steps of length ``eps_step`` along
the L2-normalised loss gradient, each projected back onto the ball and the [0, 1] box.

Parameters (preset names): ``eps`` the L2 radius, in [0, 100] (on 28x28 images in [0, 1] no two images are more
than 28 apart, so 100 is no bound at all; eps 1.5 to 3 is MNIST's usual range); ``max_iter`` steps (default 40,
as ``pgd``); ``eps_step`` the step length, by default 2.5 * eps / max_iter (Madry et al.'s rule for their L2
runs: the walk can cross the ball 1.25 times, from any start).
"""

from __future__ import annotations

from bench.attacks.family import ITER, ITERATIVE, LOSS_VIEW, AttackFamily, art_class, iterations

L2_RADIUS = (0.0, 100.0)


def _build(est, a, targeted, bs):
    a = {"eps_step": 2.5 * a["eps"] / a["max_iter"], **a}
    return art_class("ProjectedGradientDescent")(
        est, norm=2, targeted=targeted, batch_size=bs, verbose=False, num_random_init=1, **a
    )


PGD_L2 = AttackFamily(
    "pgd_l2",
    "ART ProjectedGradientDescent (L2, one random start)",
    LOSS_VIEW,
    _build,
    {"max_iter": 40},
    {"eps": L2_RADIUS, "eps_step": L2_RADIUS, "max_iter": ITER},
    cost=iterations,
    norm=2,
    uses_gradient=True,
    knows_model=False,
    steps=ITERATIVE,
    origin="ART",
)
