"""The attacks that know the model: margin PGD (decision scores and the pre-tanh view), ART's APGD on our
estimator, ART's Square attack, on real MNIST and tiny trained models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attacks_ext.margin_pgd import MarginPGD, margin
from bench.attacks import ATTACKS
from bench.matrix.passes import count_passes
from models.estimator import make_estimator
from models.zoo import obtain
from tests.conftest import tiny_spec


def estimator_for(name: str, store):
    stored = obtain(tiny_spec(name), store, progress=False)
    return make_estimator(stored.spec, stored.network.eval(), (1, 28, 28), 10)


def accuracy_under(est, attack: str, params: dict, x: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    np.random.seed(seed)
    torch.manual_seed(seed)
    x_adv = ATTACKS.get(attack).make(est, params, False, 128).generate(x, y=F.one_hot(torch.from_numpy(y), 10).numpy())
    delta = (x_adv - x).reshape(len(x), -1)
    size = np.abs(delta).max(1) if ATTACKS.get(attack).norm == math.inf else np.linalg.norm(delta, axis=1)
    assert size.max() <= params["eps"] * (1 + 1e-6) + 1e-6  # inside the ball of the family's own norm
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    return float((est.predict(x_adv).argmax(1) == y).mean())


def spy_on_loss_gradient(est) -> tuple[list[int], object]:
    """Count the calls of ``est.loss_gradient`` (one entry per call); returns the count and the original."""
    calls: list[int] = []
    original = est.loss_gradient

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    est.loss_gradient = spy
    return calls, original


@pytest.fixture(scope="module")
def batch(mnist_small):
    return mnist_small.x[:60].numpy(), mnist_small.y[:60].numpy()


def test_margin_is_positive_exactly_when_the_decision_is_won():
    scores = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 1.0], [1.0, 1.0, 0.0]])
    labels = torch.tensor([0, 0, 1])
    # untargeted: away from the label; row 2 is a tie, which is not a win
    assert (margin(scores, labels, targeted=False) > 0).tolist() == [False, True, False]
    assert (margin(scores, torch.tensor([2, 1, 0]), targeted=True) > 0).tolist() == [False, True, False]
    assert margin(scores, labels, targeted=False).tolist() == [-1.0, 5.0, 0.0]


@pytest.mark.parametrize("model", ["O:SOFTMAX:CE", "hinge", "R:TANH:MSE"])
def test_margin_pgd_is_at_least_as_strong_as_pgd_on_the_training_loss(store, batch, model):
    """Same eps, step and iterations; margin PGD adds restarts and an objective that no loss can flatten."""
    est = estimator_for(model, store)
    x, y = batch
    params = {"eps": 0.15, "eps_step": 0.02, "max_iter": 20}
    loss_pgd = accuracy_under(est, "pgd", params, x, y)
    margin_pgd = accuracy_under(est, "pgd_margin", {**params, "num_random_init": 2}, x, y)
    assert margin_pgd <= loss_pgd, (model, margin_pgd, loss_pgd)
    assert margin_pgd < float((est.predict(x).argmax(1) == y).mean())  # it does attack


def test_margin_pgd_success_is_judged_on_the_decision_even_through_the_pretanh_view(store, batch):
    est = estimator_for("R:TANH:MSE", store)
    x, y = batch
    attack = MarginPGD(est, eps=0.2, eps_step=0.02, max_iter=20, num_random_init=2, view="pretanh")
    np.random.seed(0)
    x_adv = attack.generate(x, y=y)
    fooled = est.predict(x_adv).argmax(1) != y
    clean_right = est.predict(x).argmax(1) == y
    assert fooled[clean_right].mean() > 0.3  # the surrogate leads somewhere on this tiny model
    with torch.no_grad():
        outputs = est.raw_outputs(torch.from_numpy(x_adv))
    nearest = torch.cdist(outputs, est.network.head.codebook).argmin(1).numpy()
    assert (nearest != y).tolist() == fooled.tolist()  # success means the nearest codeword changed


def test_margin_pgd_restarts_only_what_is_still_robust_and_counts_its_passes(store, batch):
    est = estimator_for("O:SOFTMAX:CE", store)
    x, y = batch
    one = MarginPGD(est, eps=0.3, eps_step=0.05, max_iter=10, num_random_init=1)
    five = MarginPGD(est, eps=0.3, eps_step=0.05, max_iter=10, num_random_init=5)
    with count_passes(est.network) as n1:
        np.random.seed(0)
        x_one = one.generate(x, y=y)
    with count_passes(est.network) as n5:
        np.random.seed(0)
        five.generate(x, y=y)
    still_robust = int((est.predict(x_one).argmax(1) == y).sum())
    assert 0 < n1.forward <= 11 * len(x)  # at most max_iter + 1 forwards per image, fewer as images fall
    # the same first restart (same seed), then at most 4 x 11 forwards for each image it left standing
    assert n1.forward <= n5.forward <= n1.forward + 4 * 11 * still_robust


def test_margin_pgd_gives_each_image_the_same_result_at_any_batch_size(store, batch):
    """Each image's restarts draw their starts from their own generators and run in a pool that refills: an image's
    result is the same in a pool of 7 (neighbours winning and new images joining at every call) as in one of 60."""
    est = estimator_for("O:SOFTMAX:CE", store)
    x, y = batch
    eps = np.where(np.arange(len(x)) % 2 == 0, 0.1, 0.3)  # half the images hold out for several restarts
    results, calls = [], []
    for batch_size in (7, 60):
        attack = MarginPGD(est, eps=eps, eps_step=0.02, max_iter=15, num_random_init=3, batch_size=batch_size)
        with count_passes(est.network) as passes:
            np.random.seed(3)
            results.append(attack.generate(x, y=y))
        calls.append(passes)
    won = [est.predict(r).argmax(1) != y for r in results]
    assert 0 < won[1].sum() < len(x)  # some images won, some held out to the last restart
    assert (won[0] == won[1]).all()
    assert np.abs(results[0] - results[1]).max() <= 1e-5
    assert calls[0].forward == calls[1].forward  # the same steps, images for image
    assert calls[0].forward / 7 > calls[1].calls  # in fuller calls at the larger batch
    # at 7, every call is full until the queue is empty, and then at most 3 restarts x 16 steps are left
    assert calls[0].calls <= math.ceil(calls[0].forward / 7) + 3 * 16


def test_margin_pgd_refuses_the_pretanh_view_without_codewords(store):
    with pytest.raises(ValueError, match="view='pretanh' needs a codeword model"):
        MarginPGD(estimator_for("O:SOFTMAX:CE", store), view="pretanh")
    with pytest.raises(ValueError, match="num_random_init=0"):
        MarginPGD(estimator_for("O:SOFTMAX:CE", store), num_random_init=0)


def test_art_apgd_takes_our_estimator_and_its_loss(store, batch):
    """APGD with loss_type=None keeps our estimator: a spy on loss_gradient sees it called."""
    est = estimator_for("hinge", store)
    calls, _ = spy_on_loss_gradient(est)
    x, y = batch
    attack = ATTACKS.get("apgd").make(est, {"eps": 0.2, "max_iter": 10}, False, 128)
    assert attack.estimator is est
    np.random.seed(0)
    attack.generate(x[:20], y=F.one_hot(torch.from_numpy(y[:20]), 10).numpy())
    assert len(calls) >= 10


def test_square_attack_needs_no_gradient(store, batch):
    est = estimator_for("O:SOFTMAX:CE", store)
    est.loss_gradient = est.class_gradient = None  # any gradient call would raise
    x, y = batch
    clean = float((est.predict(x).argmax(1) == y).mean())
    assert accuracy_under(est, "square", {"eps": 0.3, "max_iter": 200}, x, y) < clean


# 10 images at eps 0.3: AutoAttack's Square spends 5 x 5,000 queries on each image its APGDs leave robust
def test_art_autoattack_attacks_the_bare_module_with_its_own_losses(store, batch):
    """Stock AutoAttack never calls our loss_gradient (its APGDs rebuild a classifier from the bare module with
    cross-entropy and DLR), and on the hinge model, whose own loss is flat once the margin is met, it does at
    least as well as PGD on that loss."""
    est = estimator_for("hinge", store)
    calls, original = spy_on_loss_gradient(est)
    x, y = batch[0][:10], batch[1][:10]
    clean = float((est.predict(x).argmax(1) == y).mean())
    stock = accuracy_under(est, "autoattack", {"eps": 0.3, "eps_step": 0.1}, x, y)
    assert calls == []
    est.loss_gradient = original
    ours = accuracy_under(est, "pgd", {"eps": 0.3, "eps_step": 0.01, "max_iter": 40}, x, y)
    assert stock < clean and stock <= ours
