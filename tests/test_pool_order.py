"""The order in which the pools of CW-L2, L-BFGS and margin PGD feed images to the network: those expected to have the
most work left first (attacks_ext._common.work_left; margin PGD: new images before restarts), so that a long search
does not start last and run alone."""

from __future__ import annotations

import numpy as np
import torch

from attacks_ext._common import work_left
from attacks_ext.cw import CarliniWagnerL2, _Searches
from attacks_ext.margin_pgd import MarginPGD
from bench.matrix.passes import count_passes
from models.estimator import make_estimator
from models.network import build_network
from tests.conftest import tiny_spec


def test_work_left_is_the_steps_left_at_the_mean_ended_step_less_the_current_one():
    ended, spent, current = np.array([0, 1, 2]), np.array([0, 100, 400]), np.array([10, 0, 50])
    # image 0 has ended no step: the mean of all ended steps, 500 / 3
    expected = [5 * 500 / 3 - 10, 4 * 100 - 0, 3 * 200 - 50]
    np.testing.assert_allclose(work_left(ended, spent, current, 5, 1000), expected)
    as_tensors = work_left(*(torch.as_tensor(a) for a in (ended, spent, current)), 5, 1000)
    np.testing.assert_allclose(as_tensors.numpy(), expected)
    nothing_ended = work_left(np.zeros(2, int), np.zeros(2, int), np.array([3, 7]), 5, 1000)
    np.testing.assert_allclose(nothing_ended, [5000 - 3, 5000 - 7])  # the step limit until a step has ended


def test_cw_feeds_the_images_with_most_iterations_left_in_index_order():
    spec = tiny_spec("O:SOFTMAX:CE")  # untrained: only the order is looked at
    estimator = make_estimator(spec, build_network(spec, (1, 28, 28), 10), (1, 28, 28), 10)
    searches = _Searches(torch.zeros(5, 1, 28, 28), torch.full((5,), 0.01, dtype=torch.float64), 0.01)
    searches.step[:] = torch.tensor([1, 1, 1, 4, 1])  # image 3 is in its last step
    searches.spent[:] = torch.tensor([100, 900, 300, 400, 500])
    attack = CarliniWagnerL2(estimator, binary_search_steps=5, max_iter=1000, batch_size=2, view="scores")
    # left: 400, 3600, 1200, 100, 2000 -> images 1 and 4, in index order
    assert attack._next_rows(searches, torch.arange(5)).tolist() == [1, 4]
    assert attack._next_rows(searches, torch.tensor([0, 3])).tolist() == [0, 3]  # all of them when they fit


def test_margin_pgd_starts_every_image_before_any_restart():
    """Three images that never win (eps 0, aimed away from the network's own decision), two restarts each, two rows:
    new images first runs [0, 1], [2, 0'], [1', 2'], three blocks of max_iter + 1 calls; restarts first would run
    [0, 1], [0', 1'], then image 2's two restarts alone, four blocks."""
    spec = tiny_spec("O:SOFTMAX:CE")  # untrained: it only has to decide something
    estimator = make_estimator(spec, build_network(spec, (1, 28, 28), 10), (1, 28, 28), 10)
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    attack = MarginPGD(estimator, eps=0.0, eps_step=0.01, max_iter=4, num_random_init=2, batch_size=2)
    decisions = estimator.predict(x).argmax(1)
    with count_passes(estimator.network) as passes:
        x_adv = attack.generate(x, y=decisions)
    assert np.array_equal(x_adv, x)
    assert passes.forward == 3 * 2 * 5 and passes.calls == 3 * 5
