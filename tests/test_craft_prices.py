"""Each craft is priced by the model's best batch timed around it, so that the machine's drift over a run is not
read as an attack's cost; the price travels with the cached craft."""

from __future__ import annotations

import pytest

from bench.matrix.craft import Crafter, sample_set
from bench.matrix.group_run import GroupInputs, run_group
from bench.matrix.groups import craft_groups
from bench.matrix.passes import PassCount, Prices, Throughput
from bench.matrix.plan import MatrixOptions
from bench.matrix.workbench import Workbench
from tests.test_groups import CE, sweep

FAST = {"pgd": {"max_iter": 3, "eps_step": 0.05}, "bim": {"max_iter": 3, "eps_step": 0.05}}


class Ticks:
    """A clock whose i-th timing costs (i + 1) ms per image forward and as much backward: each craft's price
    says which timings it was given."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> Throughput:
        self.calls += 1
        return Throughput(self.calls * 1e-3, self.calls * 1e-3, 64)


@pytest.fixture(scope="module")
def images(mnist_test):
    return sample_set(mnist_test, 12, 0)


def test_crafts_one_by_one_are_each_priced_by_the_timings_either_side(ce, images, tmp_path):
    cells = sweep("pgd", "whitebox_untargeted", "eps", [0.1, 0.2, 0.3], 12, FAST["pgd"])  # ART's PGD: one call each
    clock = Ticks()
    crafted = Crafter(tmp_path).craft_group(cells, ce, images, clock=clock)
    assert clock.calls == 4  # before the first, then after each
    for i, cell in enumerate(cells):
        assert crafted[cell.craft_key].price.forward_s == pytest.approx((i + 1 + i + 2) / 2 * 1e-3)


def test_a_group_crafted_in_one_call_shares_one_price_which_the_cache_keeps(ce, images, tmp_path):
    cells = sweep("bim", "whitebox_untargeted", "eps", [0.1, 0.3], 12, FAST["bim"])  # BIM takes eps per image
    clock = Ticks()
    fresh = Crafter(tmp_path).craft_group(cells, ce, images, clock=clock)
    assert clock.calls == 2 and [c.price.forward_s for c in fresh.values()] == pytest.approx([1.5e-3, 1.5e-3])

    again = Ticks()
    cached = Crafter(tmp_path).craft_group(cells, ce, images, clock=again)
    assert again.calls == 0  # nothing crafted, nothing timed
    assert all(cached[k].reused and cached[k].price == fresh[k].price for k in fresh)


def test_untimed_crafts_have_no_price(ce, images, tmp_path):
    cells = sweep("bim", "whitebox_untargeted", "eps", [0.1], 12, FAST["bim"])
    assert Crafter(tmp_path).craft_group(cells, ce, images)[cells[0].craft_key].price is None


def test_records_price_their_passes_at_the_timing_around_their_craft(ce, images, tmp_path, tiny_models):
    cells = sweep("bim", "whitebox_untargeted", "eps", [0.1, 0.3], 12, FAST["bim"])
    (group,) = craft_groups(cells)
    prices = Prices(ce.network, images.x.repeat(43, 1, 1, 1))
    identity = Workbench(MatrixOptions(dataset="mnist"), {CE: tiny_models[CE].spec}, tmp_path / "c").identity
    crafter = Crafter(tmp_path / "c")
    inputs = GroupInputs({CE: ce}, images, crafter, lambda _: prices, identity)
    records = [record for _, record in run_group(group, cells, inputs)]
    craft = crafter.craft_group(cells, ce, images)[cells[0].craft_key]  # read back from the cache
    price = craft.price
    assert price.batch_size == prices.best().batch_size
    for record in records:
        passes = PassCount(record.forward_passes, record.backward_passes)
        assert record.best_pass_seconds == pytest.approx(price.seconds(passes))
        drift = prices.drift(price)  # the batch the attack ran with: its price moved as the best batch's did
        assert record.pass_seconds == pytest.approx(prices.at(craft.batch).seconds(passes) * drift)


def test_now_times_the_best_batch_again_only_once_its_timing_has_aged(ce, images):
    lasting = Prices(ce.network, images.x.repeat(43, 1, 1, 1), rounds=1, max_age=3600)
    assert lasting.now() is lasting.now() and lasting.now().batch_size == lasting.best().batch_size
    fresh = Prices(ce.network, images.x.repeat(43, 1, 1, 1), rounds=1, max_age=0)
    assert fresh.now() is not fresh.now()
