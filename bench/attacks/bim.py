"""BIM: Kurakin et al. (2017), "Adversarial examples in the physical world"; FGSM repeated ``max_iter`` times with
steps of ``eps_step``, clipped to the L-inf ball of radius ``eps`` (ART's BasicIterativeMethod)."""

from __future__ import annotations

from bench.attacks.family import art_class, art_per_image, papers_iterative


def _build(est, a, targeted, bs):
    return art_class("BasicIterativeMethod")(
        est, targeted=targeted, batch_size=bs, verbose=False, **art_per_image(est, a)
    )


BIM = papers_iterative(
    "bim", "ART BasicIterativeMethod", _build, {"eps_step": 0.05, "max_iter": 10}, per_image=("eps",)
)
