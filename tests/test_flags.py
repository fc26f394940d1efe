"""The checklist flags on hand-made records: each fires on the pattern it names, only beyond sampling error,
and stays quiet on a consistent set of results."""

from __future__ import annotations

import dataclasses
import math

from bench.attacks import ATTACKS
from bench.results import flags
from bench.results.flags import all_flags
from bench.results.metrics import wilson_interval
from bench.results.store import Record


def cell(attack: str, eps: float, hits: int, n: int = 500, setting: str = "whitebox_untargeted", **config) -> Record:
    low, high = wilson_interval(hits, n)
    source = config.pop("source", None)
    return Record(
        cell_hash=f"{attack}-{eps}-{setting}-{source}-{config}",
        name=f"d/{setting}/{attack}[eps={eps}]/m",
        dataset="d",
        model="m",
        model_key="k",
        setting=setting,
        source=source,
        attack=attack,
        param="eps",
        value=eps,
        config={"params": config},
        metric="accuracy",
        rate=hits / n,
        ci_low=low,
        ci_high=high,
        n=n,
        hits=hits,
    )


def diagnostic(check: str, hits: int, n: int = 500) -> Record:
    """A gradient-health cell (bench/results/diagnostics.py): ``hits`` of ``n`` images have the problem."""
    return dataclasses.replace(cell(check, 0.0, hits, n, setting="diagnostics"), param=None, value=None, metric="share")


CONSISTENT = [
    cell("fgsm", 0.1, 300),
    cell("pgd", 0.1, 100, max_iter=40),
    cell("pgd", 0.1, 95, max_iter=400),
    cell("square", 0.1, 150, max_iter=1000),
    cell("pgd", 0.1, 280, setting="transfer", source="other"),
    cell("pgd", 0.5, 40, max_iter=40),
]


def test_a_consistent_evaluation_raises_no_flag():
    assert all_flags(CONSISTENT) == []


def test_each_flag_fires_on_its_pattern():
    cases = {
        "iterative_vs_single_step": [cell("fgsm", 0.1, 300), cell("bim", 0.1, 420)],
        "whitebox_vs_transfer": [cell("mim", 0.1, 400), cell("mim", 0.1, 200, setting="transfer", source="x")],
        "chance_at_large_eps": [cell("pgd", 0.5, 480), cell("fgsm", 1.0, 470)],
        "gradient_free_vs_gradient": [cell("pgd", 0.3, 450), cell("fgsm", 0.3, 460), cell("square", 0.3, 20)],
        "budget_sensitivity": [cell("pgd_margin", 0.1, 300, max_iter=20), cell("pgd_margin", 0.1, 100, max_iter=200)],
        "papers_attacks_overstate": [cell("mim", 0.2, 250), cell("pgd", 0.2, 260), cell("pgd_margin", 0.2, 3)],
    }
    for check, records in cases.items():
        fired = {f.check for f in all_flags(records)}
        assert fired == {check}, (check, fired)


def test_a_difference_within_sampling_error_does_not_fire():
    # 52% against 48% of 100 images: the intervals overlap, so no evidence that BIM is weaker than FGSM
    assert all_flags([cell("fgsm", 0.1, 48, n=100), cell("bim", 0.1, 52, n=100)]) == []


def test_the_checks_compare_the_attacks_the_registry_describes():
    """The lists the checks compare are asked of each family's description; for the built-in families they are
    the lists once typed by hand here and in the report."""
    from bench.reports import answer, robustness

    assert flags.single_step_attacks() == ("fgsm",)
    assert flags.iterative_attacks() == ("bim", "mim", "pgd", "pgd_margin", "pgd_margin_pretanh", "apgd")
    assert flags.gradient_free_attacks() == ("square",)
    assert flags.gradient_attacks() == ("fgsm", "bim", "mim", "pgd", "pgd_margin", "pgd_margin_pretanh", "apgd")
    assert flags.papers_attacks() == ("fgsm", "bim", "mim", "pgd")
    assert flags.attacks_that_know_the_model() == ("pgd_margin", "pgd_margin_pretanh", "apgd", "autoattack")
    assert answer.verdict_attacks() == ("pgd_margin", "square")
    assert set(robustness.harness_attacks()) == {"pgd_margin", "pgd_margin_pretanh", "apgd", "autoattack", "square"}


def test_a_family_registered_later_takes_part_by_its_description(monkeypatch):
    """A new gradient-free L-inf family is compared like Square; the same family with an L2 ball is not, since
    its eps is another radius."""
    free = dataclasses.replace(ATTACKS.get("square"), name="my_queries", needed_for_verdict=False)
    records = [cell("pgd", 0.3, 450), cell("fgsm", 0.3, 460), cell("my_queries", 0.3, 20)]
    assert all_flags(records) == []  # not registered: no description, no comparison
    monkeypatch.setattr(ATTACKS, "_entries", {**ATTACKS._entries, "my_queries": free})
    assert "my_queries" in flags.gradient_free_attacks()
    assert {f.check for f in all_flags(records)} == {"gradient_free_vs_gradient"}
    l2 = dataclasses.replace(free, norm=2, ranges={**free.ranges, "eps": (0.0, 100.0)})
    monkeypatch.setattr(ATTACKS, "_entries", {**ATTACKS._entries, "my_queries": l2})
    assert all_flags(records) == [] and l2.norm != math.inf
