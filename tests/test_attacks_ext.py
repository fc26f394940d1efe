"""The attacks of attacks_ext on real MNIST and tiny trained models: against ART's CW, the paper's Table 7 effect,
L-BFGS's trade-off constant, the binary search, and the parameter checks."""

from __future__ import annotations

import logging
import re
import time

import numpy as np
import pytest
import torch
from art.attacks.evasion import CarliniL2Method

from attacks_ext import ATTACKS, CarliniWagnerL2, CarliniWagnerL2Codeword, LBFGSAttack, MarginPGD
from attacks_ext.cw import _Searches, class_scores, margin_loss
from attacks_ext.lbfgs import _SearchOnC
from bench.errors import ConfigError
from models.estimator import make_estimator
from models.network import build_network
from models.zoo import obtain
from tests.conftest import tiny_spec

log = logging.getLogger(__name__)


def estimator_for(name: str, store):
    """The estimator of a tiny trained model (taken from the session's store, trained there if missing)."""
    stored = obtain(tiny_spec(name), store, progress=False)
    return make_estimator(stored.spec, stored.network, (1, 28, 28), 10)


@pytest.fixture(scope="module")
def ce_est(store):
    return estimator_for("O:SOFTMAX:CE", store)


@pytest.fixture(scope="module")
def tanh_est(store):
    return estimator_for("R:TANH:MSE", store)


@pytest.fixture(scope="module")
def untrained_est():
    spec = tiny_spec("O:SOFTMAX:CE")
    torch.manual_seed(0)
    return make_estimator(spec, build_network(spec, (1, 28, 28), 10), (1, 28, 28), 10)


def images(split, n: int) -> tuple[np.ndarray, np.ndarray]:
    return split.x[:n].numpy(), split.y[:n].numpy()


def random_targets(y: np.ndarray, seed: int = 0) -> np.ndarray:
    """A random class other than the true one for each image, as the papers draw targets."""
    return (y + np.random.default_rng(seed).integers(1, 10, size=len(y))) % 10


def outcome(est, x: np.ndarray, x_adv: np.ndarray, labels: np.ndarray, targeted: bool):
    """(success per image by the model's own decision, L2 per image)."""
    predicted = est.predict(x_adv, batch_size=128).argmax(1)
    success = predicted == labels if targeted else predicted != labels
    return success, np.sqrt(((x_adv - x) ** 2).reshape(len(x), -1).sum(1))


def assert_well_formed(est, x, x_adv, labels, targeted) -> np.ndarray:
    """In the box, float32, and every x' that differs from x is a success by the model's decision."""
    assert x_adv.dtype == np.float32 and x_adv.shape == x.shape
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    success, l2 = outcome(est, x, x_adv, labels, targeted)
    assert (l2[~success] == 0).all(), f"failures came back changed: L2 {l2[~success]}"
    return success


# --- C&W L2 against ART's ---------------------------------------------------------------------------------

CW_BUDGETS = [
    pytest.param(dict(binary_search_steps=1, max_iter=30), id="1x30"),
    pytest.param(dict(binary_search_steps=2, max_iter=50), id="2x50", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("budget", CW_BUDGETS)
def test_cw_l2_agrees_with_arts_carlini_l2(budget, ce_est, mnist_small):
    """Same parameters, untargeted, O:SOFTMAX:CE: success rates within sampling error, mean L2 within 1.5x.

    ART's attack takes gradient steps with a line search where ours (and C&W's, and Cleverhans') takes Adam
    steps, so the two agree in distribution, not image by image.
    """
    x, y = images(mnist_small, 20)
    params = dict(learning_rate=0.1, initial_const=10.0, batch_size=20, **budget)
    start = time.perf_counter()
    ours = CarliniWagnerL2(ce_est, view="scores", **params).generate(x, y)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    art = CarliniL2Method(ce_est, verbose=False, **params).generate(x, y)
    art_s = time.perf_counter() - start
    ok_ours, l2_ours = outcome(ce_est, x, ours, y, targeted=False)
    ok_art, l2_art = outcome(ce_est, x, art, y, targeted=False)
    log.info(
        "ours: %.2f success, mean L2 %.3f, %.1f s; ART: %.2f, %.3f, %.1f s",
        *(ok_ours.mean(), l2_ours[ok_ours].mean(), ours_s, ok_art.mean(), l2_art[ok_art].mean(), art_s),
    )
    assert ok_ours.mean() >= 0.8 and ok_art.mean() >= 0.8
    assert abs(ok_ours.mean() - ok_art.mean()) <= 0.2  # about two standard errors of a difference at n = 20
    ratio = l2_ours[ok_ours].mean() / l2_art[ok_art].mean()
    assert 1 / 1.5 <= ratio <= 1.5, f"mean L2 ours / ART = {ratio:.2f}"
    assert_well_formed(ce_est, x, ours, y, targeted=False)
    # on a one-hot model the raw outputs are the logits, so the stock view is the same attack
    np.testing.assert_array_equal(CarliniWagnerL2(ce_est, view="raw", **params).generate(x, y), ours)


# --- the tailored attack of saito2019 section 3.3 -------------------------------------------------------------

TARGETED = dict(targeted=True, learning_rate=0.1, binary_search_steps=2, max_iter=50, initial_const=10.0)


def test_codeword_attack_breaks_the_codeword_model_where_stock_cw_fails(tanh_est, mnist_small):
    """saito2019 Table 7 on R:TANH:MSE: targeted stock CW (raw tanh outputs taken for logits) rarely reaches
    the target; the codeword attack mostly does. Paper, MNIST: 0.006 vs 0.715."""
    x, y = images(mnist_small, 20)
    t = random_targets(y)
    stock = CarliniWagnerL2(tanh_est, view="raw", **TARGETED).generate(x, t)
    tailored = CarliniWagnerL2Codeword(tanh_est, **TARGETED).generate(x, t)
    ok_stock, _ = outcome(tanh_est, x, stock, t, targeted=True)
    ok_tailored = assert_well_formed(tanh_est, x, tailored, t, targeted=True)
    log.info("R:TANH:MSE targeted success: stock %.2f, codeword %.2f", ok_stock.mean(), ok_tailored.mean())
    assert ok_stock.mean() <= 0.3
    assert ok_tailored.mean() >= 0.6
    assert ok_tailored.mean() >= ok_stock.mean() + 0.4


def test_views_on_the_codeword_model(tanh_est, mnist_small):
    """The model's scores are -distance to each codeword, so view "scores" is the codeword attack; "raw" has
    one score per tanh output (128), indexed by class number as the stock attacker does."""
    x, y = images(mnist_small, 8)
    t = random_targets(y)
    x_t = torch.from_numpy(x)
    with torch.no_grad():
        assert class_scores(tanh_est, x_t, "raw").shape == (8, 128)
        torch.testing.assert_close(class_scores(tanh_est, x_t, "codeword"), class_scores(tanh_est, x_t, "scores"))
    budget = dict(TARGETED, binary_search_steps=1, max_iter=10)
    np.testing.assert_allclose(
        CarliniWagnerL2(tanh_est, view="scores", **budget).generate(x, t),
        CarliniWagnerL2Codeword(tanh_est, **budget).generate(x, t),
        atol=1e-6,
    )


@pytest.fixture(scope="module")
def ce_targeted(ce_est, mnist_small):
    """Targeted cw_l2 and cw_l2_codeword on O:SOFTMAX:CE: (x, targets, success of cw_l2, of cw_l2_codeword)."""
    x, y = images(mnist_small, 20)
    t = random_targets(y)
    stock = CarliniWagnerL2(ce_est, **TARGETED).generate(x, t)
    tailored = CarliniWagnerL2Codeword(ce_est, **TARGETED).generate(x, t)
    ok_stock = assert_well_formed(ce_est, x, stock, t, targeted=True)
    ok_tailored = assert_well_formed(ce_est, x, tailored, t, targeted=True)
    log.info("O:SOFTMAX:CE targeted success: cw_l2 %.2f, codeword %.2f", ok_stock.mean(), ok_tailored.mean())
    return ok_stock, ok_tailored


def test_codeword_attack_on_a_softmax_model_returns_real_successes(ce_targeted):
    """Its success check (nearest one-hot row to the softmax output) is the model's decision."""
    ok_stock, ok_tailored = ce_targeted
    assert ok_stock.mean() >= 0.9
    assert ok_tailored.mean() >= 0.15


def test_codeword_attack_on_a_softmax_model_behaves_as_cw_l2(ce_targeted):
    """Both succeed on most images and agree within sampling error (20 images: a 95% interval is about ±0.2)."""
    from bench.results.metrics import wilson_interval

    ok_stock, ok_tailored = ce_targeted
    n = len(ok_tailored)
    stock_low, stock_high = wilson_interval(int(ok_stock.sum()), n)
    tailored_low, tailored_high = wilson_interval(int(ok_tailored.sum()), n)
    assert tailored_low >= 0.5 and stock_low >= 0.5
    assert tailored_low <= stock_high and stock_low <= tailored_high  # the intervals overlap


# --- the shared pieces: C&W's f, the codeword attack as CarliniWagnerL2 with its view fixed -------------------


@pytest.mark.parametrize("targeted", [True, False])
def test_margin_loss_is_carlini_and_wagners_f_with_its_gradient(targeted):
    """f + k = max(max_{i!=t} s_i - s_t + k, 0) targeted, max(s_y - max_{i!=y} s_i + k, 0) untargeted, written out
    here as C&W write it, on scores with ties (a rounded normal): the same values and the same input gradient,
    bit for bit."""
    scores = torch.randn(64, 10, generator=torch.Generator().manual_seed(0)).round(decimals=1).requires_grad_(True)
    labels = torch.arange(64) % 10
    rows = torch.arange(64)
    own = scores[rows, labels]
    other = torch.stack([torch.cat([s[:k], s[k + 1 :]]).max() for s, k in zip(scores, labels.tolist(), strict=True)])
    written_out = ((other - own if targeted else own - other) + 0.5).clamp_min(0.0)
    (expected_grad,) = torch.autograd.grad(written_out.sum(), scores)
    loss = margin_loss(scores, labels, targeted, 0.5)
    (grad,) = torch.autograd.grad(loss.sum(), scores)
    assert torch.equal(loss, written_out) and (loss > 0).any() and (loss == 0).any()
    assert torch.equal(grad, expected_grad)


def test_codeword_attack_is_cw_l2_on_the_codeword_view(tanh_est, mnist_small):
    """CarliniWagnerL2Codeword only fixes the view: the same examples as CarliniWagnerL2(view="codeword"), bit
    for bit, and a view passed to it is refused."""
    x, y = images(mnist_small, 5)
    params = dict(binary_search_steps=2, max_iter=15, initial_const=1.0, learning_rate=0.05, batch_size=3)
    tailored = CarliniWagnerL2Codeword(tanh_est, **params).generate(x, y)
    assert np.array_equal(tailored, CarliniWagnerL2(tanh_est, view="codeword", **params).generate(x, y))
    assert not np.array_equal(tailored, x)
    with pytest.raises(ValueError, match="view is fixed"):
        CarliniWagnerL2Codeword(tanh_est, view="raw")


# --- batching and the binary search --------------------------------------------------------------------------


def test_cw_result_does_not_depend_on_the_batch(ce_est, mnist_small):
    """The early abort is per example, so an image's result is the same alone or in a batch."""
    x, y = images(mnist_small, 6)
    params = dict(learning_rate=0.1, binary_search_steps=2, max_iter=10, initial_const=10.0)
    whole = CarliniWagnerL2(ce_est, batch_size=6, **params).generate(x, y)
    pairs = CarliniWagnerL2(ce_est, batch_size=2, **params).generate(x, y)
    np.testing.assert_allclose(whole, pairs, atol=1e-4)


def test_cw_binary_search_follows_carlini_and_wagner():
    """c x10 until a success, then bisection between the largest failure and the smallest success, per image."""
    outcomes = [[False, True], [False, False], [True, True], [False, True], [True, False]]
    searches = _Searches(torch.zeros(2, 1, 28, 28), torch.full((2,), 0.01, dtype=torch.float64), 0.01)
    seen = []
    for found in outcomes:
        seen.append(searches.const.tolist())
        searches.found[:] = torch.tensor(found)
        searches.end_step(torch.arange(2))
    expected_first = [0.01, 0.1, 1.0, 0.55, 0.775]  # F F T F: x10, x10, (0.1 + 1) / 2, (0.55 + 1) / 2
    expected_second = [0.01, 0.005, 0.0075, 0.00625, 0.005625]  # T F T T: (0 + .01) / 2, (.005 + .01) / 2, ...
    np.testing.assert_allclose([c[0] for c in seen], expected_first, rtol=1e-6)
    np.testing.assert_allclose([c[1] for c in seen], expected_second, rtol=1e-6)
    assert searches.step.tolist() == [5, 5] and not searches.found.any()


def test_cw_keeps_its_batch_full_while_images_have_work_left(ce_est, mnist_small):
    """An image that ends a search step starts its next at once, and one that ends its last makes room for the
    next image: the network sees batch_size images until fewer have work left, never a batch that shrinks and
    grows again (as batches waiting for their slowest image at every step would), and every image ends where it
    ends alone, with the same work."""
    x, y = images(mnist_small, 6)
    consts = np.array([0.01, 0.1, 1.0, 10.0, 100.0, 0.01])
    params = dict(view="scores", learning_rate=0.1, binary_search_steps=3, max_iter=20)
    rows_seen: list[int] = []
    hook = ce_est.model.register_forward_hook(lambda module, args, out: rows_seen.append(len(out)))
    try:
        alone, work_alone = [], 0
        for i in range(len(x)):
            rows_seen.clear()
            attack = CarliniWagnerL2(ce_est, initial_const=float(consts[i]), **params)
            alone.append(attack.generate(x[i : i + 1], y[i : i + 1]))
            work_alone += len(rows_seen)
        rows_seen.clear()
        pooled = CarliniWagnerL2(ce_est, initial_const=consts, batch_size=2, **params)
        together = pooled.generate(x, y)
    finally:
        hook.remove()
    assert pooled.batch_sizes == rows_seen  # what the attack says the network saw
    assert rows_seen[0] == 2 and all(a >= b for a, b in zip(rows_seen, rows_seen[1:], strict=False)), rows_seen
    assert sum(rows_seen) == work_alone
    np.testing.assert_allclose(together, np.concatenate(alone), atol=1e-4)


# --- L-BFGS --------------------------------------------------------------------------------------------------


def _spy_on_searches(monkeypatch):
    """Records each image's L-BFGS solves as (c, success, L2 squared), in the order its search took them (searches
    are made in image order by both solvers)."""
    searches, ended, init = [], _SearchOnC.ended, _SearchOnC.__init__

    def record_init(self, const):
        init(self, const)
        searches.append([])
        self.spy_index = len(searches) - 1

    def record_end(self, success, l2):
        searches[self.spy_index].append((self.const, success, l2))
        return ended(self, success, l2)

    monkeypatch.setattr(_SearchOnC, "__init__", record_init)
    monkeypatch.setattr(_SearchOnC, "ended", record_end)
    return searches


@pytest.mark.parametrize("solver", ["torch", "scipy"])
def test_lbfgs_reaches_targets_and_a_larger_c_gives_smaller_perturbations(solver, ce_est, mnist_small, monkeypatch):
    """Two binary-search steps from c = 0.01: every success raises c to 0.1, whose perturbations are smaller;
    the attack returns the smaller of each image's successes."""
    x, y = images(mnist_small, 10)
    t = random_targets(y)
    searches = _spy_on_searches(monkeypatch)
    attack = LBFGSAttack(ce_est, initial_const=0.01, binary_search_steps=2, max_iter=50, solver=solver)
    returned = attack.generate(x, t)
    assert [len(solves) for solves in searches] == [2] * len(x)
    (c_first, ok_first, l2_first), (c_second, ok_second, l2_second) = (
        np.array([solves[k] for solves in searches]).T for k in (0, 1)
    )
    ok_first, ok_second = ok_first.astype(bool), ok_second.astype(bool)
    raised = ok_first & ok_second
    log.info(
        "L-BFGS (%s) success %.2f at c = 0.01, mean L2^2 %.3f -> %.3f at c = 0.1 (%d images)",
        *(solver, ok_first.mean(), l2_first[raised].mean(), l2_second[raised].mean(), raised.sum()),
    )
    assert ok_first.mean() >= 0.8 and raised.sum() >= 5
    np.testing.assert_allclose(c_first, 0.01)
    np.testing.assert_allclose(c_second[ok_first], 0.1)  # a success at c raises it tenfold
    assert l2_second[raised].mean() < 0.81 * l2_first[raised].mean()  # L2 squared: 0.9 on L2
    ok_returned = assert_well_formed(ce_est, x, returned, t, targeted=True)
    _, l2_returned = outcome(ce_est, x, returned, t, targeted=True)
    assert (ok_returned == (ok_first | ok_second)).all()
    best = np.minimum(np.where(ok_first, l2_first, np.inf), np.where(ok_second, l2_second, np.inf))
    np.testing.assert_allclose(l2_returned[ok_returned] ** 2, best[ok_returned], rtol=1e-4)


def test_lbfgs_lowers_its_distance_weight_tenfold_until_a_first_success_then_bisects():
    """Paper c = 0.01 is our 100 on the distance: failures must walk it down by 10x (not halve it), as Cleverhans
    raises its constant on the loss, so that five steps reach the paper's whole range; once both a success and a
    failure are known, c bisects between them, and the best x' is the smallest success."""
    search = _SearchOnC(100.0)
    consts = []
    for success, l2 in [(False, 0.0), (False, 0.0), (False, 0.0), (True, 2.0), (False, 0.0), (True, 3.0)]:
        consts.append(search.const)
        best = search.ended(success, l2)
        assert best == (success and l2 == 2.0)
    np.testing.assert_allclose(consts, [100.0, 10.0, 1.0, 0.1, 0.55, 0.325], rtol=1e-12)


def test_lbfgs_solvers_agree_on_a_trained_model(ce_est, mnist_small):
    """The batched solver and SciPy's L-BFGS-B (a different algorithm for the same problems) reach the same targets
    and perturbations of about the same size: the same successes on at least 18 of 20 images and mean L2 within 5%."""
    x, y = images(mnist_small, 20)
    t = random_targets(y)
    results = {}
    for solver in ("torch", "scipy"):
        adv = LBFGSAttack(ce_est, initial_const=1.0, binary_search_steps=2, max_iter=100, solver=solver).generate(x, t)
        results[solver] = outcome(ce_est, x, adv, t, targeted=True)
    (ok_t, l2_t), (ok_s, l2_s) = results["torch"], results["scipy"]
    log.info(
        "L-BFGS success torch %.2f scipy %.2f; mean L2 %.3f %.3f", ok_t.mean(), ok_s.mean(), l2_t.mean(), l2_s.mean()
    )
    both = ok_t & ok_s
    assert (ok_t == ok_s).sum() >= 18 and both.sum() >= 10
    assert abs(l2_t[both].mean() / l2_s[both].mean() - 1) < 0.05


@pytest.mark.parametrize("solver", ["torch", "scipy"])
def test_lbfgs_solves_each_image_alone_while_the_network_sees_full_batches(solver, ce_est, mnist_small):
    """A sweep over c in one call (c per image, batches of 4) gives each image what it gets alone (up to the
    network's rounding between batch sizes), and every network call holds 4 images while 4 or more are left: an
    image that ends its search makes room for the next."""
    x, y = images(mnist_small, 8)
    t = random_targets(y)
    consts = np.array([0.01, 0.1, 1.0, 10.0] * 2)
    params = dict(binary_search_steps=2, max_iter=30, solver=solver)
    alone = [
        LBFGSAttack(ce_est, initial_const=float(consts[n]), **params).generate(x[n : n + 1], t[n : n + 1])
        for n in range(8)
    ]
    attack = LBFGSAttack(ce_est, initial_const=consts, batch_size=4, **params)
    together = attack.generate(x, t)
    # The network's outputs differ by about 1e-6 between a batch of 4 and of 1, which 30 L-BFGS-B iterations
    # can grow to a few thousandths on a pixel; a batch of one image gives exactly what the image gets alone.
    ok_alone, l2_alone = outcome(ce_est, x, np.concatenate(alone), t, targeted=True)
    ok_together, l2_together = outcome(ce_est, x, together, t, targeted=True)
    assert ok_alone.sum() >= 4 and (ok_together == ok_alone).all()
    np.testing.assert_allclose(l2_together, l2_alone, rtol=0.02)
    np.testing.assert_allclose(together, np.concatenate(alone), atol=0.01)
    one_at_a_time = LBFGSAttack(ce_est, initial_const=consts, batch_size=1, **params).generate(x, t)
    np.testing.assert_array_equal(one_at_a_time, np.concatenate(alone))
    sizes = attack.batch_sizes
    assert max(sizes) == 4 and sizes[0] == 4
    assert sum(sizes) > 2 * 4 * (params["max_iter"] // 10)  # the images' evaluations went through these calls
    tail = [i for i, s in enumerate(sizes) if s < 4]  # once a call is short, no image is left to start
    assert all(s < 4 for s in sizes[tail[0] :]) if tail else True


# --- parameters ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda est: CarliniWagnerL2(est, max_iter=-1), "max_iter=-1"),
        (lambda est: CarliniWagnerL2(est, view="logits"), "view='logits'"),
        (lambda est: CarliniWagnerL2(est, confidence=-0.5), "confidence=-0.5"),
        (lambda est: CarliniWagnerL2(est, binary_search_steps=0), "binary_search_steps=0"),
        (lambda est: CarliniWagnerL2(est, targeted=np.array([0.0, 1.0])), "1-D bool array"),
        (lambda est: CarliniWagnerL2(est, targeted="yes"), "targeted='yes'"),
        (lambda est: CarliniWagnerL2Codeword(est, learning_rate=0.0), "learning_rate=0.0"),
        (lambda est: CarliniWagnerL2Codeword(est, initial_const=float("nan")), "initial_const=nan"),
        (lambda est: LBFGSAttack(est, targeted=False), "targeted=False"),
        (lambda est: LBFGSAttack(est, max_iter=-3), "max_iter=-3"),
        (lambda est: LBFGSAttack(est, batch_size=True), "batch_size=True"),
        (lambda est: LBFGSAttack(est, solver="newton"), "solver='newton'"),
    ],
)
def test_bad_parameters_are_named(make, fragment, untrained_est):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        make(untrained_est)


def test_set_params_is_checked_and_the_codeword_view_is_fixed(untrained_est):
    attack = CarliniWagnerL2Codeword(untrained_est)
    with pytest.raises(ValueError, match="view"):
        attack.set_params(view="raw")
    with pytest.raises(ValueError, match="max_iter=0"):
        attack.set_params(max_iter=0)
    with pytest.raises(ValueError, match="target classes"):
        LBFGSAttack(untrained_est).generate(np.zeros((1, 1, 28, 28), np.float32))
    with pytest.raises(ValueError, match="target classes"):  # one image targeted is enough to need them
        CarliniWagnerL2(untrained_est, targeted=np.array([False, True])).generate(np.zeros((2, 1, 28, 28), np.float32))


def test_registry_keys():
    assert ATTACKS == {
        "cw_l2": CarliniWagnerL2,
        "cw_l2_codeword": CarliniWagnerL2Codeword,
        "lbfgs": LBFGSAttack,
        "pgd_margin": MarginPGD,
    }


def test_the_matrix_gives_lbfgs_the_papers_c_as_the_constant_on_the_loss(ce_est):
    from bench.attacks import ATTACKS as FAMILIES

    # saito2019 (Cleverhans) puts c on the loss, ours on the distance: paper c = 10 is our 0.1.
    attack = FAMILIES.get("lbfgs").make(ce_est, {"c": 10.0}, True, 8)
    assert attack.initial_const == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="targeted only"):
        FAMILIES.get("lbfgs").make(ce_est, {"c": 10.0}, False, 8)
