"""The report's answer on hand-made result sets: the robustness line follows the worst case alone, the trust line the
flags and what ran, and the two never stand in for each other (a trusted 0.000 is not "robust", a high number from
attacks that do not know the model is not "trusted")."""

from __future__ import annotations

import dataclasses

import numpy as np

from bench.reports.answer import answer_section, robustness, trust
from bench.results.flags import all_flags
from bench.results.store import encode_indices
from bench.results.worst_case import worst_case_records
from tests.test_flags import cell, diagnostic

CHANCE = 0.1


def outcome(attack: str, eps: float, hits: int, n: int = 200, **kw):
    """A cell whose first ``hits`` images stay correct, on images 0..n-1, with clean accuracy 0.99."""
    r = cell(attack, eps, hits, n, **kw)
    bits = np.zeros(n, dtype=bool)
    bits[:hits] = True
    return dataclasses.replace(
        r,
        per_example=np.packbits(bits).tobytes(),
        image_indices=encode_indices(np.arange(n)),
        clean_accuracy=0.99,
        name=f"d/{r.setting}/{attack}[eps={eps:g}]/m",
        seed=0,
    )


def with_worst_case(records):
    return records + worst_case_records(records)


def complete(eps: float, hits: int) -> list:
    """The papers' attack and both attacks that know the model, all leaving ``hits`` images correct."""
    return [outcome("pgd", eps, hits), outcome("pgd_margin", eps, hits), outcome("square", eps, hits)]


def test_a_trusted_evaluation_of_a_broken_model_says_broken_and_trusted():
    records = with_worst_case(complete(0.1, 180) + complete(0.3, 0))
    ok = [r for r in records if r.status == "ok"]
    worst = [r for r in records if r.attack == "worst_case"]
    line = robustness(worst, CHANCE)
    assert "0.900 at eps 0.1 to 0.000 at eps 0.3" in line
    assert "keeps at least half its clean accuracy up to eps 0.1" in line
    assert "no better than chance (0.1) from eps 0.3" in line
    verdict = trust("m", ok, all_flags(ok))
    assert verdict.level == "trusted"
    text = answer_section(records, CHANCE)
    assert "Evaluation: trusted" in text and "no better than chance" in text


def test_a_high_number_from_the_papers_attacks_alone_is_incomplete_not_trusted():
    records = with_worst_case([outcome("fgsm", 0.3, 190), outcome("pgd", 0.3, 185)])
    ok = list(records)
    worst = [r for r in records if r.attack == "worst_case"]
    assert "above chance (0.1) at every eps measured" in robustness(worst, CHANCE)
    verdict = trust("m", ok, all_flags(ok))
    assert verdict.level == "incomplete" and "pgd_margin, square did not run" in verdict.text


def test_flags_decide_trust_and_leave_the_robustness_line_alone():
    base = complete(0.2, 100)
    overstated = [outcome("pgd", 0.2, 190), outcome("pgd_margin", 0.2, 100), outcome("square", 0.2, 100)]
    blind = diagnostic("gradient_vanishing", 300)
    for records, level, words in [
        (base, "trusted", "no flag fired"),
        (overstated, "worst case only", "papers_attacks_overstate"),
        ([*base, blind], "worst case only", "blind on part of the images (gradient_vanishing)"),
    ]:
        ok = with_worst_case(records)
        verdict = trust("m", ok, all_flags(ok))
        assert verdict.level == level and words in verdict.text, verdict
        worst = [r for r in ok if r.attack == "worst_case"]
        assert robustness(worst, CHANCE).startswith("worst-case accuracy 0.500 at eps 0.2")


def test_a_budget_that_still_moves_the_number_makes_the_worst_case_doubtful():
    records = [
        *complete(0.1, 150),
        outcome("pgd_margin", 0.1, 150, max_iter=20),
        outcome("pgd_margin", 0.1, 60, max_iter=200),
    ]
    ok = with_worst_case(records)
    assert trust("m", ok, all_flags(ok)).level == "doubtful"


def test_below_half_the_clean_accuracy_everywhere_is_said_so():
    worst = [r for r in with_worst_case(complete(0.3, 60)) if r.attack == "worst_case"]
    assert "below half its clean accuracy at every eps measured" in robustness(worst, CHANCE)


def test_a_training_seeds_model_gets_its_models_published_number():
    from bench.reports.reference import lookup

    plain = lookup("saito2019:3", "whitebox_untargeted", "mnist", "O:SOFTMAX:CE", "fgsm", "eps", 0.1)
    assert plain is not None
    assert lookup("saito2019:3", "whitebox_untargeted", "mnist", "O:SOFTMAX:CE@s2", "fgsm", "eps", 0.1) == plain


def test_training_seeds_are_pooled_with_their_spread_and_the_least_trusted_seed_named():
    def seeded(records, seed):
        return [
            dataclasses.replace(
                r,
                model=f"m@s{seed}",
                name=r.name.replace("/m", f"/m@s{seed}"),
                cell_hash=f"{r.cell_hash}-{seed}",
                model_key=f"k{seed}",
            )
            for r in records
        ]

    s0 = seeded(complete(0.1, 100), 0)  # 0.5
    s1 = seeded([outcome("pgd", 0.1, 150), outcome("pgd_margin", 0.1, 140)], 1)  # 0.7, square missing
    records = with_worst_case(s0 + s1)
    text = answer_section(records, CHANCE)
    row = next(line for line in text.splitlines() if line.startswith("| m "))
    assert "0.600 ±" in row and "(seeds 0.500–0.700)" in row and "pgd_margin" in row  # 240 of 400 pooled
    assert "**m**: worst-case accuracy 0.600 at eps 0.1" in text
    assert "incomplete: square did not run" in text and "(on m@s1; the other seeds are less doubtful)" in text
