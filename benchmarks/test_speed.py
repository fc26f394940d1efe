"""Speed of the harness's hot paths, ours beside ART's stock parts (`pytest benchmarks --benchmark-only`).

Every benchmark is one batch of 128 MNIST test images: `loss_gradient` of every model kind (untrained
Table I CNNs), and one run of each attack against a lightly trained O:SOFTMAX:CE CNN with small iteration
counts, the same for our attack and ART's. `bench benchmarks-report` turns the saved JSON into reports/benchmarks.md.
"""

from __future__ import annotations

import pytest

from bench.analyses.compare_art import stock_classifier
from bench.attacks import ATTACKS
from models.kinds import built_in_kinds

# Small budgets, the same for ours and ART's, so a round takes seconds; the report gives them per row.
ATTACK_PARAMS = {
    "fgsm": ({"eps": 0.1}, False),
    "bim": ({"eps": 0.1, "max_iter": 10}, False),
    "mim": ({"eps": 0.1, "max_iter": 10}, False),
    "pgd": ({"eps": 0.3, "max_iter": 10}, False),
    "deepfool": ({"max_iter": 10}, False),
    "cw_l2": ({"c": 0.1, "binary_search_steps": 1, "max_iter": 10}, True),
    "cw_l2_codeword": ({"c": 0.1, "binary_search_steps": 1, "max_iter": 10}, True),
    "cw_l2_art": ({"c": 0.1, "binary_search_steps": 1, "max_iter": 10}, True),
    "lbfgs": ({"c": 0.1, "binary_search_steps": 1, "max_iter": 10}, True),
}


@pytest.mark.parametrize("kind", built_in_kinds())
def test_loss_gradient(benchmark, estimators, batch, kind):
    benchmark.group = "loss_gradient, 128 images"
    x, y, _ = batch
    grad = benchmark(estimators[kind].loss_gradient, x, y)
    assert grad.shape == x.shape


def test_loss_gradient_art_stock(benchmark, estimators, batch):
    """ART's PyTorchClassifier with CrossEntropyLoss on the same network as our O:SOFTMAX:CE."""
    benchmark.group = "loss_gradient, 128 images"
    x, y, _ = batch
    stock = stock_classifier(estimators["O:SOFTMAX:CE"])
    assert benchmark(stock.loss_gradient, x, y).shape == x.shape


@pytest.mark.parametrize("attack", list(ATTACK_PARAMS))
def test_attack_batch(benchmark, attacked, batch, attack):
    benchmark.group = "one attack batch, 128 images, O:SOFTMAX:CE"
    params, targeted = ATTACK_PARAMS[attack]
    benchmark.extra_info["params"] = params
    x, y, targets = batch
    runner = ATTACKS.get(attack).make(attacked, dict(params), targeted, 128)
    x_adv = benchmark.pedantic(runner.generate, args=(x,), kwargs={"y": targets if targeted else y}, rounds=3)
    assert x_adv.shape == x.shape


@pytest.mark.parametrize("path", ["numpy", "pytorch"])
def test_art_pgd_paths(benchmark, attacked, batch, path):
    """ART's two implementations of PGD on our estimator: the framework-neutral NumPy one and the PyTorch one."""
    from art.attacks.evasion.projected_gradient_descent.projected_gradient_descent_numpy import (
        ProjectedGradientDescentNumpy,
    )
    from art.attacks.evasion.projected_gradient_descent.projected_gradient_descent_pytorch import (
        ProjectedGradientDescentPyTorch,
    )

    benchmark.group = "ART PGD paths, 128 images, 10 iterations"
    cls = ProjectedGradientDescentNumpy if path == "numpy" else ProjectedGradientDescentPyTorch
    x, y, _ = batch
    attack = cls(attacked, eps=0.3, eps_step=0.01, max_iter=10, batch_size=128, verbose=False)
    assert benchmark.pedantic(attack.generate, args=(x,), kwargs={"y": y}, rounds=3).shape == x.shape
