"""Carlini & Wagner (2017), "Towards Evaluating the Robustness of Neural Networks", the L2 attack, three ways:
ART's CarliniL2Method (the baseline), ours on the raw outputs (``attacks_ext.CarliniWagnerL2``, what a stock
attacker runs), and saito2019 section 3.3's tailored form on the distances to the codewords. Minimal-perturbation
attacks: no eps ball; ``c`` is C&W's ``initial_const``."""

from __future__ import annotations

from bench.attacks.family import CONST, ITER, ITERATIVE, AttackFamily, art_class, ext_class, searches

RANGES = {
    "c": CONST,
    "binary_search_steps": (1, 100),
    "max_iter": ITER,
    "learning_rate": (1e-6, 10.0),
    "confidence": (0.0, 1e6),
}
DEFAULTS = {"binary_search_steps": 5, "max_iter": 1000, "learning_rate": 0.01, "confidence": 0.0}


def _art(est, a, targeted, bs):
    return art_class("CarliniL2Method")(est, targeted=targeted, batch_size=bs, verbose=False, **a)


def _ext(name: str):
    def build(est, a, targeted, bs):
        return ext_class(name)(est, targeted=targeted, batch_size=bs, **a)

    return build


CW_L2_ART = AttackFamily(
    "cw_l2_art",
    "ART CarliniL2Method (line search; the ART baseline)",
    "per-class scores (predict, class_gradient)",
    _art,
    DEFAULTS,
    RANGES,
    rename={"c": "initial_const"},
    cost=lambda p: 19 * searches(p),  # measured: about 19x the passes it needs
    norm=None,
    uses_gradient=True,
    knows_model=False,
    steps=ITERATIVE,
    papers=True,
    origin="ART",
)
CW_L2 = AttackFamily(
    "cw_l2",
    "bench CarliniWagnerL2 (Adam in tanh space, batched)",
    "the network's raw outputs taken for logits (for R:TANH:MSE the 128 tanh outputs, indexed by class number)",
    _ext("cw_l2"),
    DEFAULTS,
    RANGES,
    rename={"c": "initial_const"},
    cost=searches,
    norm=None,
    uses_gradient=True,
    knows_model=False,  # the stock attacker: raw outputs taken for logits
    steps=ITERATIVE,
    papers=True,
    needs_view="raw",
    per_image=("c", "targeted"),
    origin="bench attacks_ext",
)
CW_L2_CODEWORD = AttackFamily(
    "cw_l2_codeword",
    "bench CarliniWagnerL2Codeword (saito2019 section 3.3)",
    "euclidean distances from the output to each target representation (codewords; one-hot rows for softmax models)",
    _ext("cw_l2_codeword"),
    DEFAULTS,
    RANGES,
    rename={"c": "initial_const"},
    cost=searches,
    norm=None,
    uses_gradient=True,
    knows_model=True,  # saito2019's tailored attack reads the codewords the decision compares
    steps=ITERATIVE,
    papers=True,
    needs_view="raw",
    per_image=("c", "targeted"),
    origin="bench attacks_ext",
)
