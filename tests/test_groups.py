"""Craft groups: a sweep crafted in one call agrees with its cells crafted one by one, and a group cut short resumes
to the same records."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.attacks import ATTACKS
from bench.errors import ConfigError
from bench.matrix.craft import Crafter, labels_for, sample_set
from bench.matrix.group_run import GroupInputs, run_group
from bench.matrix.groups import craft_groups
from bench.matrix.passes import Prices
from bench.matrix.plan import Cell, MatrixOptions, expand
from bench.matrix.preset import load_preset
from bench.matrix.workbench import Workbench

CE = "O:SOFTMAX:CE"


def sweep(attack: str, setting: str, param: str, values, n: int, fixed: dict | None = None, key: str = "k-ce"):
    return [
        Cell(
            dataset="mnist",
            model=CE,
            model_key=key,
            setting=setting,
            attack=attack,
            params=tuple(sorted({**(fixed or {}), param: float(v)}.items())),
            param=param,
            value=float(v),
            n_samples=n,
            seed=0,
        )
        for v in values
    ]


@pytest.fixture(scope="module")
def images(mnist_test):
    return sample_set(mnist_test, 40, 0)


def test_the_paper_preset_groups_each_sweep_and_its_transfer_cells():
    preset = load_preset("paper")
    keys = {m: f"key-{i}" for i, m in enumerate(preset.models)}
    cells = expand(preset, "mnist", keys)
    groups = craft_groups(cells)
    assert sorted(c.hash for g in groups for c in g.cells) == sorted(c.hash for c in cells)  # each cell once
    for group in groups:  # a group's crafts differ in the swept value only, and in targeted or not where CW's
        assert len({(c.targeted, c.value) for c in group.crafts}) == len(group.crafts)
        assert {c.craft_key for c in group.cells} == {c.craft_key for c in group.crafts}
        assert len({c.targeted for c in group.crafts}) == 1 or "targeted" in ATTACKS.get(group.attack).per_image
    cw = [g for g in groups if g.attack == "cw_l2" and g.craft_model == CE]
    assert len(cw) == 1 and cw[0].batched  # the untargeted and the targeted sweep: one pool of 8 x 20 images
    assert [(c.targeted, c.value) for c in cw[0].crafts] == [(t, v) for t in (False, True) for v in (0.01, 0.1, 1, 10)]
    settings = {c.setting for c in cw[0].cells}  # transfer and tailored cells reuse its crafts
    assert settings == {"whitebox_untargeted", "whitebox_targeted", "transfer", "tailored"}
    by_attack = {g.attack: g.batched for g in groups if len(g.crafts) > 1}
    assert by_attack["bim"] and by_attack["mim"] and by_attack["cw_l2_codeword"] and by_attack["lbfgs"]
    assert not by_attack["pgd"]  # ART's PGD cannot start at random per-image eps


def _craft(ce, images, tmp_path, cells, together: bool):
    crafter = Crafter(tmp_path / ("together" if together else "alone"), batch_size=128)
    if together:
        return crafter.craft_group(cells, ce, images)
    return {c.craft_key: crafter.craft_group([c], ce, images)[c.craft_key] for c in cells}


def _success(ce, images, cells, crafted) -> list[np.ndarray]:
    """Per cell and image: the attack reached the target (targeted) or moved the decision off the label."""
    out = []
    for cell in cells:
        hit = ce.network(crafted[cell.craft_key].x_adv).argmax(1) == labels_for(cell, images)
        out.append((hit if cell.targeted else ~hit).numpy())
    return out


def test_fgsm_sweep_in_one_gradient_is_exactly_the_cells_one_by_one(ce, images, tmp_path):
    cells = sweep("fgsm", "whitebox_untargeted", "eps", [0.05, 0.1, 0.2], 40)
    together, alone = (_craft(ce, images, tmp_path, cells, t) for t in (True, False))
    for cell in cells:
        assert torch.equal(together[cell.craft_key].x_adv, alone[cell.craft_key].x_adv)
    shares = [together[c.craft_key].passes.backward for c in cells]
    assert sum(shares) == alone[cells[0].craft_key].passes.backward == 40  # one gradient per image for all three


@pytest.mark.parametrize(
    ("attack", "setting", "param", "values", "fixed"),
    [
        ("bim", "whitebox_untargeted", "eps", [0.05, 0.1, 0.2], {"eps_step": 0.02, "max_iter": 5}),
        ("mim", "whitebox_targeted", "eps", [0.1, 0.2], {"eps_step": 0.05, "max_iter": 5}),
        ("cw_l2", "whitebox_untargeted", "c", [0.1, 1.0, 10.0], {"binary_search_steps": 2, "max_iter": 30}),
        ("pgd_margin", "whitebox_untargeted", "eps", [0.05, 0.15], {"max_iter": 10, "num_random_init": 1}),
        ("lbfgs", "whitebox_targeted", "c", [0.1, 10.0], {"binary_search_steps": 2, "max_iter": 20}),
    ],
)
def test_a_batched_sweep_agrees_with_its_cells_one_by_one(ce, images, tmp_path, attack, setting, param, values, fixed):
    cells = sweep(attack, setting, param, values, 40, fixed)
    groups = craft_groups(cells)
    assert len(groups) == 1 and groups[0].batched
    together, alone = (_craft(ce, images, tmp_path, cells, t) for t in (True, False))
    assert together[cells[0].craft_key].batch == min(128, 40 * len(values))
    for a, b in zip(_success(ce, images, cells, together), _success(ce, images, cells, alone), strict=True):
        if attack == "pgd_margin":  # random starts drawn otherwise: the same rate within sampling error
            assert abs(a.mean() - b.mean()) <= 0.2
        else:  # deterministic: the same image for image, but for floating-point ties in a rare gradient sign
            assert (a != b).mean() <= 0.05
    for cell in cells:  # each value kept to its own budget
        if param == "eps":
            linf = (together[cell.craft_key].x_adv - images.x).abs().flatten(1).amax(1)
            assert linf.max() <= cell.value + 1e-5


def test_untargeted_and_targeted_cw_sweeps_run_in_one_call_and_agree_with_their_cells_one_by_one(ce, images, tmp_path):
    """CW takes targeted per image: a model's two sweeps are one group and one call of 4 x 40 images, batches of 128
    (instead of two calls of 80), and each cell gets what it gets alone, aiming where its setting says."""
    fixed = {"binary_search_steps": 2, "max_iter": 50, "learning_rate": 0.1}
    cells = [sweep("cw_l2", s, "c", [1.0, 10.0], 40, fixed) for s in ("whitebox_untargeted", "whitebox_targeted")]
    cells = cells[0] + cells[1]
    (group,) = craft_groups(cells)
    assert group.batched and [c.targeted for c in group.crafts] == [False, False, True, True]
    together, alone = (_craft(ce, images, tmp_path, cells, t) for t in (True, False))
    assert together[cells[0].craft_key].batch == 128
    rates = []
    for a, b in zip(_success(ce, images, cells, together), _success(ce, images, cells, alone), strict=True):
        assert (a != b).mean() <= 0.05
        rates.append(a.mean())
    # image for image as alone, where most images succeed: a craft aimed the wrong way would not agree
    assert min(rates) >= 0.5, rates


def _inputs(ce, images, crafter, spec):
    prices = Prices(ce.network, images.x.repeat(13, 1, 1, 1))
    identity = Workbench(MatrixOptions(dataset="mnist"), {CE: spec}, crafter.cache_dir).identity
    return GroupInputs({CE: ce}, images, crafter, lambda label: prices, identity)


@pytest.mark.parametrize("attack", ["pgd", "cw_l2"])  # crafted one call per value, and in one call
def test_a_group_cut_short_resumes_to_the_same_records(ce, images, tmp_path, attack, tiny_models):
    spec = tiny_models[CE].spec
    fixed = {"max_iter": 5, "eps_step": 0.02} if attack == "pgd" else {"binary_search_steps": 1, "max_iter": 20}
    cells = sweep(attack, "whitebox_untargeted", "eps" if attack == "pgd" else "c", [0.1, 0.3, 1.0], 40, fixed)
    (group,) = craft_groups(cells)
    whole = {c.hash: r for c, r in run_group(group, cells, _inputs(ce, images, Crafter(tmp_path / "whole"), spec))}

    crafter = Crafter(tmp_path / "cut")
    first = next(run_group(group, cells, _inputs(ce, images, crafter, spec)))  # the run is killed after one record
    rest = [c for c in cells if c.hash != first[0].hash]
    again = run_group(group, rest, _inputs(ce, images, crafter, spec))
    resumed = {first[0].hash: first[1]} | {c.hash: r for c, r in again}

    assert set(resumed) == set(whole)
    for key, record in whole.items():
        assert record.status == "ok" and resumed[key].status == "ok"
        assert (resumed[key].hits, resumed[key].per_example) == (record.hits, record.per_example)
        assert resumed[key].craft_reused == (key != first[0].hash)  # the rest were cached by the cut run
    if group.batched:  # one call, charged in equal shares (to a pass)
        passes = [r.forward_passes for r in whole.values()]
        assert max(passes) - min(passes) <= 1


def test_only_a_family_that_takes_targeted_per_image_is_given_flags(ce):
    flags = np.array([False, True])
    with pytest.raises(ConfigError, match="'bim' takes no per-image 'targeted'"):
        ATTACKS.get("bim").make(ce, {"eps": 0.1}, flags, 8)
    attack = ATTACKS.get("cw_l2").make(ce, {"c": 1.0}, flags, 8)
    assert attack.targeted.tolist() == [False, True]
