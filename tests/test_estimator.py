"""Every model kind as an ART estimator: its gradients, its decision rule, and ART's attacks against it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from art.attacks.evasion import CarliniL2Method, DeepFool, FastGradientMethod, ProjectedGradientDescent
from art.attacks.evasion.projected_gradient_descent.projected_gradient_descent_pytorch import (
    ProjectedGradientDescentPyTorch,
)

from models.codebook import ONE_HOT_SCALE
from models.estimator import make_estimator
from models.kinds import built_in_kinds
from models.network import build_network
from tests.conftest import tiny_spec

ALL_KINDS = built_in_kinds()
GRADIENT_CASES = [*ALL_KINDS, "R:TANH:MSE_d16", "R:TANH:CE_d16", "R:LINEAR:MSE_d16"]  # and a codeword length by name


def stated_loss(spec, network, x, y):
    """Each paper's loss written from the head's raw outputs, independently of models.losses."""
    raw = network.raw_outputs(x)
    one_hot = F.one_hot(y, 10).to(raw.dtype)
    if spec.model == "O:SOFTMAX:CE":
        return -(raw.log_softmax(1) * one_hot).sum(1)
    if spec.model == "O:SOFTMAX:MSE":
        return ((raw.softmax(1) - one_hot) ** 2).mean(1)
    if spec.model in ("R:TANH:MSE", "R:LINEAR:MSE"):
        return ((raw - network.head.codebook[y]) ** 2).mean(1)
    if spec.model == "O:TANH:MSE":  # tanh outputs against +a at the class, -a elsewhere
        return ((raw - ONE_HOT_SCALE * (2 * one_hot - 1)) ** 2).mean(1)
    if spec.model == "R:TANH:CE":  # cross-entropy over softmax(-||z - c_i||)
        distances = ((raw[:, None, :] - network.head.codebook[None]) ** 2).sum(-1).sqrt()
        return -((-distances).log_softmax(1) * one_hot).sum(1)
    if spec.model == "hinge":
        true = (raw * one_hot).sum(1, keepdim=True)
        return ((raw - true + 1).clamp_min(0) * (1 - one_hot)).sum(1)
    logits = spec.lmcl_s * (raw - spec.lmcl_m * one_hot)  # lmcl: raw outputs are cosines
    return -(logits.log_softmax(1) * one_hot).sum(1)


def fresh_estimator(name, dtype=torch.float32):
    spec = tiny_spec(name)
    torch.manual_seed(0)
    network = build_network(spec, (1, 28, 28), 10).to(dtype)
    return spec, network, make_estimator(spec, network, (1, 28, 28), 10)


@pytest.mark.parametrize("name", GRADIENT_CASES)
def test_loss_gradient_is_the_input_gradient_of_the_stated_loss(name, mnist_small):
    spec, network, est = fresh_estimator(name)
    x, y = mnist_small.x[:16], mnist_small.y[:16]
    grad = est.loss_gradient(x.numpy(), y.numpy())
    x_req = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(stated_loss(spec, network, x_req, y).sum(), x_req)
    assert np.abs(expected.numpy()).max() > 0
    np.testing.assert_allclose(grad, expected.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", GRADIENT_CASES)
def test_loss_gradient_matches_finite_differences(name, mnist_small):
    """Central differences in float64 along a random direction, per example.

    MNIST's flat background gives exact ties in max-pooling, where the loss has no gradient; a little
    noise moves the point off them.
    """
    spec, network, est = fresh_estimator(name, torch.float64)
    gen = torch.Generator().manual_seed(0)
    x, y = mnist_small.x[:4].double(), mnist_small.y[:4]
    x = x + 0.05 * torch.rand(x.shape, generator=gen, dtype=torch.float64)
    grad = est.loss_gradient(x, y)
    direction = torch.randn(x.shape, generator=gen, dtype=torch.float64)
    h = 1e-7  # small enough that no ReLU or max-pool switches between the two points
    with torch.no_grad():
        numeric = stated_loss(spec, network, x + h * direction, y) - stated_loss(spec, network, x - h * direction, y)
    numeric = numeric / (2 * h)
    analytic = (grad * direction).flatten(1).sum(1)
    torch.testing.assert_close(analytic, numeric, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("name", ALL_KINDS)
def test_loss_gradient_returns_the_type_it_was_given_and_accepts_one_hot(name, mnist_small):
    _, _, est = fresh_estimator(name)
    x, y = mnist_small.x[:8], mnist_small.y[:8]
    as_numpy = est.loss_gradient(x.numpy(), y.numpy())
    as_torch = est.loss_gradient(x, y)
    one_hot = est.loss_gradient(x.numpy(), F.one_hot(y, 10).numpy().astype(np.float32))
    assert isinstance(as_numpy, np.ndarray) and as_numpy.dtype == np.float32 and as_numpy.shape == x.shape
    assert isinstance(as_torch, torch.Tensor) and as_torch.shape == x.shape
    np.testing.assert_allclose(as_numpy, as_torch.numpy(), rtol=1e-6)
    np.testing.assert_allclose(as_numpy, one_hot, rtol=1e-6)


@pytest.mark.parametrize("name", ALL_KINDS)
def test_predict_argmax_is_the_models_decision_rule(name, tiny_models, mnist_small):
    stored = tiny_models[name]
    network = stored.network
    est = make_estimator(stored.spec, network, (1, 28, 28), 10)
    x = mnist_small.x
    predicted = est.predict(x.numpy(), batch_size=100).argmax(1)
    with torch.no_grad():
        raw = network.raw_outputs(x)
    if name in ("R:TANH:MSE", "R:TANH:CE", "R:LINEAR:MSE"):
        decision = torch.cdist(raw, network.head.codebook).argmin(1)  # nearest codeword
    elif name == "O:SOFTMAX:MSE" or name == "O:SOFTMAX:CE":
        decision = raw.softmax(1).argmax(1)
    else:  # hinge: largest score; lmcl: largest cosine; O:TANH:MSE: the nearest of +a/-a is the largest output
        decision = raw.argmax(1)
    assert (predicted == decision.numpy()).all()
    assert (predicted == mnist_small.y.numpy()).mean() > 0.8  # the tiny model has learnt something


def _accuracy(est, x, y):
    return float((est.predict(x, batch_size=100).argmax(1) == y).mean())


ATTACKS = {
    "fgsm": lambda est: FastGradientMethod(est, eps=0.3, batch_size=100),
    "pgd": lambda est: ProjectedGradientDescent(
        est, eps=0.3, eps_step=0.05, max_iter=10, batch_size=100, verbose=False
    ),
    # c weighs the margin of the scores against the distance, and scores differ by kind in scale: O:TANH:MSE's
    # differ by at most 2 sqrt(2) / sqrt(3) ~ 1.6, and its tiny model held at 0.80 of 0.85 with c = 10 (0.15 at 100)
    "cw_l2_art": lambda est: CarliniL2Method(
        est, learning_rate=0.1, binary_search_steps=1, max_iter=10, initial_const=100.0, batch_size=100, verbose=False
    ),
    "deepfool": lambda est: DeepFool(est, max_iter=20, epsilon=0.02, nb_grads=10, batch_size=100, verbose=False),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
@pytest.mark.parametrize("name", ALL_KINDS)
def test_art_attacks_lower_the_accuracy_of_a_trained_model(name, attack, tiny_models, mnist_small):
    stored = tiny_models[name]
    est = make_estimator(stored.spec, stored.network, (1, 28, 28), 10)
    n = 20 if attack in ("cw_l2_art", "deepfool") else 40  # ART's CW and DeepFool are slow on the CPU
    x, y = mnist_small.x[:n].numpy(), mnist_small.y[:n].numpy()
    art_attack = ATTACKS[attack](est)
    if attack == "pgd":
        assert isinstance(art_attack._attack, ProjectedGradientDescentPyTorch)  # ART's fast torch path
    x_adv = art_attack.generate(x)
    assert np.abs(x_adv - x).max() <= 0.3 + 1e-6 or attack in ("cw_l2_art", "deepfool")
    clean, adversarial = _accuracy(est, x, y), _accuracy(est, x_adv, y)
    assert adversarial < clean - 0.1, f"{attack} on {name}: clean {clean:.2f}, adversarial {adversarial:.2f}"


def test_art_pgd_spends_the_models_own_loss(tiny_models, mnist_small, monkeypatch):
    """A spy on the loss: ART's PGD must reach the model's loss, not a cross-entropy of its own."""
    stored = tiny_models["R:TANH:MSE"]
    est = make_estimator(stored.spec, stored.network, (1, 28, 28), 10)
    calls = []
    original = est.loss_fn.per_example

    def spy(scores, labels):
        calls.append(scores.shape)
        return original(scores, labels)

    monkeypatch.setattr(est.loss_fn, "per_example", spy)
    ProjectedGradientDescent(est, eps=0.1, eps_step=0.05, max_iter=3, batch_size=100, verbose=False).generate(
        mnist_small.x[:10].numpy()
    )
    assert len(calls) >= 3 and calls[0] == (10, 10)
