"""The "What changes robustness" section on hand-made result sets: which factors it finds, and sentences whose
numbers and verbs follow from the data (flipping the data flips the verb)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.reports.factors import (
    FACTORS,
    factor_results,
    factor_sentence,
    what_changes_robustness,
)
from bench.results.paired import HIGHER, NONE, WITHIN_SPREAD
from bench.results.store import Record, encode_indices
from bench.results.worst_case import ATTACK

N = 1000


def record(model: str, attack: str, eps: float, robust: np.ndarray, dataset: str = "mnist", start: int = 0) -> Record:
    robust = np.asarray(robust, dtype=bool)
    return Record(
        cell_hash=f"{dataset}-{model}-{attack}-{eps}-{len(robust)}-{start}",
        name=f"{dataset}/whitebox_untargeted/{attack}[eps={eps:g}]/{model}",
        dataset=dataset,
        model=model,
        model_key=f"key-{model}",
        setting="whitebox_untargeted",
        source=None,
        attack=attack,
        param="eps",
        value=eps,
        config={},
        rate=float(robust.mean()),
        n=len(robust),
        hits=int(robust.sum()),
        per_example=np.packbits(robust).tobytes(),
        image_indices=encode_indices(np.arange(start, start + len(robust))),
    )


def pair(both: int, only_a: int, only_b: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.zeros(N, dtype=bool), np.zeros(N, dtype=bool)
    a[:both] = b[:both] = True
    a[both : both + only_a] = True
    b[both + only_a : both + only_a + only_b] = True
    return a, b


def cells(a: str, b: str, attack: str, eps: float, specs: list[tuple[int, int, int]], seeded=True) -> list[Record]:
    """Records of models a and b, one per seed, from (both robust, a only, b only) per seed."""
    out = []
    for seed, spec in enumerate(specs):
        x, y = pair(*spec)
        suffix = f"@s{seed}" if seeded else ""
        out += [record(a + suffix, attack, eps, x), record(b + suffix, attack, eps, y)]
    return out


def result_set(
    changed="R:TANH:MSE",
    reference="O:TANH:MSE",
    worst_02=((400, 20, 0), (425, 20, 0), (450, 20, 0)),
    worst_01=((300, 5, 5),) * 3,
):
    """FGSM at eps 0.2: +0.3 on every seed, spread 0.02. Worst case at 0.2: +0.02 on every seed, spread 0.05 (by
    default). Eps 0.1: as many images robust only under one model as only under the other (by default)."""
    return [
        *cells(changed, reference, "fgsm", 0.2, [(500, 300, 0), (510, 300, 0), (520, 300, 0)]),
        *cells(changed, reference, ATTACK, 0.2, list(worst_02)),
        *cells(changed, reference, "fgsm", 0.1, [(600, 5, 5)] * 3),
        *cells(changed, reference, ATTACK, 0.1, list(worst_01)),
    ]


def only(results, name):
    (found,) = [r for r in results if r.factor.name == name]
    return found


def test_sentence_states_the_numbers_the_data_implies():
    (result,) = factor_results(result_set())  # only the representation factor has both its models
    assert result.factor.name == "representation"
    worst, fgsm = result.by_eps(ATTACK), result.by_eps("fgsm")
    assert (worst[0.2].verdict, fgsm[0.2].verdict, worst[0.1].verdict) == (WITHIN_SPREAD, HIGHER, NONE)
    assert factor_sentence(result) == (
        "The codeword representation (against one-hot, tanh, MSE) raises FGSM accuracy at eps 0.2 by 0.300 "
        "(significant on all 3 seeds, beyond the seed spread 0.020) but raises worst-case accuracy by 0.020 "
        "(within the seed spread 0.050); at the other eps worst-case accuracy is not detectably different (eps 0.1)."
    )


def test_flipping_the_data_flips_the_verbs():
    (result,) = factor_results(result_set(changed="O:TANH:MSE", reference="R:TANH:MSE"))
    sentence = factor_sentence(result)
    assert "lowers FGSM accuracy at eps 0.2 by 0.300" in sentence
    assert "but lowers worst-case accuracy by 0.020 (within the seed spread 0.050)" in sentence
    assert "raises" not in sentence


def test_a_worst_case_difference_beyond_the_spread_is_stated_as_one():
    (result,) = factor_results(result_set(worst_02=[(400, 20, 0)] * 3))
    assert factor_sentence(result).startswith(
        "The codeword representation (against one-hot, tanh, MSE) raises FGSM accuracy at eps 0.2 by 0.300 "
        "(significant on all 3 seeds, beyond the seed spread 0.020) and raises worst-case accuracy by 0.020 "
        "(significant on all 3 seeds, beyond the seed spread 0.000);"
    )


def test_the_headline_is_the_largest_worst_case_finding():
    # +0.01 beyond the spread at eps 0.1 comes before +0.02 within it at 0.2, and before FGSM's +0.3 at 0.2
    (result,) = factor_results(result_set(worst_01=[(300, 10, 0)] * 3))
    assert factor_sentence(result) == (
        "The codeword representation (against one-hot, tanh, MSE) does not change FGSM accuracy at eps 0.1 "
        "detectably (+0.000, significant on none of the 3 seeds) but raises worst-case accuracy by 0.010 "
        "(significant on all 3 seeds, beyond the seed spread 0.000); at the other eps worst-case accuracy is "
        "different within the seed spread (eps 0.2)."
    )


def test_a_difference_on_two_of_three_seeds_does_not_change_the_worst_case():
    (result,) = factor_results(result_set(worst_02=[(400, 20, 0), (400, 20, 0), (400, 2, 0)]))
    assert result.by_eps(ATTACK)[0.2].verdict == NONE
    assert (
        "but does not change worst-case accuracy detectably (+0.014, significant in that direction on 2 of 3 seeds)"
        in factor_sentence(result)
    )


def test_one_seed_says_the_spread_is_unknown():
    records = cells("O:SOFTMAX:MSE", "O:SOFTMAX:CE", ATTACK, 0.3, [(500, 0, 40)], seeded=False)
    (result,) = factor_results(records)
    assert result.factor.name == "loss under one-hot softmax"
    (c,) = result.comparisons
    assert c.spread is None and c.seeds[0].seed is None and (c.seeds[0].b, c.seeds[0].c) == (0, 40)
    assert factor_sentence(result) == (
        f"MSE (against cross-entropy, softmax) lowers worst-case accuracy at eps 0.3 by 0.040 "
        f"(p = {c.seeds[0].p:.2g}, one seed, seed spread unknown)."
    )
    assert "unknown (one seed)" in what_changes_robustness(records)


def test_factors_whose_models_are_absent_are_skipped():
    records = result_set() + cells("R:TANH:MSE_d64", "R:TANH:MSE", ATTACK, 0.1, [(300, 0, 0)] * 3)
    results = factor_results(records)
    assert [r.factor.name for r in results] == ["representation", "codeword length 64"]
    assert [c.eps for c in only(results, "codeword length 64").comparisons] == [0.1]  # only where both ran
    assert what_changes_robustness(cells("hinge", "lmcl", ATTACK, 0.1, [(300, 5, 0)])) == ""


def test_the_section_has_a_table_and_the_sentence_per_factor():
    records = result_set()
    text = what_changes_robustness(records)
    (result,) = factor_results(records)
    assert text.startswith("### What changes robustness")
    assert "#### representation: R:TANH:MSE against O:TANH:MSE" in text
    assert factor_sentence(result) in text
    fgsm_row = next(line for line in text.splitlines() if line.startswith("| FGSM ") and "| 0.2 " in line)
    assert "+0.300" in fgsm_row and "s0: 300/0" in fgsm_row and HIGHER in fgsm_row and "0.020" in fgsm_row


def test_worst_case_is_derived_when_not_stored():
    x, y = pair(400, 30, 0)
    records = []
    for seed in range(2):
        for attack in ("fgsm", "pgd"):
            records += [record(f"R:TANH:MSE@s{seed}", attack, 0.1, x), record(f"O:TANH:MSE@s{seed}", attack, 0.1, y)]
    (result,) = factor_results(records)
    assert [c.attack for c in result.comparisons] == [ATTACK, "fgsm"]  # worst case first
    assert result.by_eps(ATTACK)[0.1].seeds[0].b == 30


def test_the_cell_with_the_most_images_is_used():
    x, y = pair(400, 30, 0)
    smaller = record("R:TANH:MSE", ATTACK, 0.1, x[:500])
    records = [smaller, record("R:TANH:MSE", ATTACK, 0.1, x), record("O:TANH:MSE", ATTACK, 0.1, y)]
    (result,) = factor_results(records)
    assert result.comparisons[0].seeds[0].n == N


def test_different_images_are_refused_naming_both_cells():
    x, y = pair(400, 30, 0)
    records = [record("R:TANH:MSE", ATTACK, 0.1, x), record("O:TANH:MSE", ATTACK, 0.1, y, start=5)]
    with pytest.raises(ValueError, match=r"worst_case\[eps=0.1\]/R:TANH:MSE and .*/O:TANH:MSE did not run on the same"):
        factor_results(records)


def test_records_of_two_datasets_are_refused():
    records = result_set() + [record("R:TANH:MSE", ATTACK, 0.1, np.ones(N), dataset="fashion_mnist")]
    with pytest.raises(ValueError, match="datasets fashion_mnist, mnist; expected the records of one dataset"):
        factor_results(records)


def test_factor_definitions():
    names = {f.name: (f.changed, f.reference) for f in FACTORS}
    assert names["representation"] == ("R:TANH:MSE", "O:TANH:MSE")
    assert names["loss"] == ("R:TANH:MSE", "R:TANH:CE")
    assert names["saturating activation"] == ("R:TANH:MSE", "R:LINEAR:MSE")
    assert names["codeword length 1024"] == ("R:TANH:MSE_d1024", "R:TANH:MSE")
    assert names["representation and activation"] == ("R:TANH:MSE", "O:SOFTMAX:MSE")
    assert len(names) == len(FACTORS)
