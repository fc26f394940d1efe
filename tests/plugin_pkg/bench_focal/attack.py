"""A custom attack for the plugin test: each pixel moved by +eps or -eps at random (an L-inf baseline)."""

import math

import numpy as np
from art.attacks import EvasionAttack
from art.estimators.classification import ClassifierMixin

from bench.attacks import AttackFamily


class RandomSign(EvasionAttack):
    attack_params = EvasionAttack.attack_params + ["eps"]
    _estimator_requirements = (ClassifierMixin,)

    def __init__(self, estimator, eps: float = 0.1) -> None:
        super().__init__(estimator=estimator)
        self.eps = eps

    def generate(self, x: np.ndarray, y: np.ndarray | None = None, **kwargs) -> np.ndarray:
        signs = np.sign(np.random.uniform(-1.0, 1.0, size=x.shape)).astype(x.dtype)
        return np.clip(x + self.eps * signs, 0.0, 1.0)


def _build(estimator, arguments, targeted, batch_size):
    return RandomSign(estimator, **arguments)


RANDOM_SIGN = AttackFamily(
    "random_sign",
    "bench-focal-plugin RandomSign",
    "nothing of the model: random signs",
    _build,
    {},
    {"eps": (0.0, 1.0)},
    targeted=False,
    norm=math.inf,
    uses_gradient=False,
    knows_model=False,
    steps="single",
)
