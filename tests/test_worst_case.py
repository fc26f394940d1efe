"""The worst case per example: never above any single attack, exact on hand-made outcomes, and computed from a
real tiny run's store."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.data.datasets import draw_indices
from bench.results.diagnostics import CHECKS
from bench.results.metrics import short
from bench.results.store import Record, ResultsStore
from bench.results.worst_case import per_example, store_worst_cases, strongest_single, worst_case_records
from tests.conftest import tiny_preset


def _record(attack: str, bits: list[int], eps: float = 0.1, source: str | None = None, model: str = "m") -> Record:
    hits = np.array(bits, dtype=bool)
    return Record(
        cell_hash=f"{attack}-{source}-{eps}-{model}",
        name=f"d/x/{attack}[eps={eps}]/{model}" + (f"<-{source}" if source else ""),
        dataset="d",
        model=model,
        model_key=f"key-{model}",
        setting="transfer" if source else "whitebox_untargeted",
        source=source,
        attack=attack,
        param="eps",
        value=eps,
        config={},
        rate=float(hits.mean()),
        n=len(bits),
        hits=int(hits.sum()),
        per_example=np.packbits(hits).tobytes(),
    )


def PREFIX(record: Record) -> np.ndarray:
    """Hand-made records: image i of every record is the same image (a smaller one is a prefix)."""
    return np.arange(record.n)


def test_outcomes_are_matched_by_image_not_by_position():
    """Real draws are nested as sets but sorted, so image k of a 10-image cell is not image k of a 20-image
    one. One image that both attacks break must count once."""
    indices = lambda r: draw_indices(50, r.n, seed=3)  # noqa: E731
    small, large = draw_indices(50, 10, 3), draw_indices(50, 20, 3)
    assert set(small) <= set(large) and not np.array_equal(small, large[:10])
    broken = small[4]  # a dataset index in both draws, at different positions
    a = _record("fgsm", (small != broken).astype(int).tolist())
    b = _record("pgd", (large != broken).astype(int).tolist())
    (worst,) = worst_case_records([a, b], indices)
    assert worst.n == 10 and worst.hits == 9
    assert per_example(worst).tolist() == (small != broken).tolist()


def test_an_image_is_robust_only_if_every_attack_failed_on_it():
    records = [
        _record("fgsm", [1, 1, 1, 0, 1, 1, 1, 1, 1, 0]),
        _record("pgd", [1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]),  # a larger sample: compared on the first 10
        _record("mim", [1, 1, 0, 1, 1, 1, 1, 1, 1, 1], source="other"),
        _record("pgd", [0] * 10, eps=0.3),  # another eps: alone, so no worst case there
    ]
    (worst,) = worst_case_records(records, PREFIX)
    assert worst.n == 10 and per_example(worst).tolist() == [1, 0, 0, 0, 1, 1, 1, 1, 1, 0]
    assert worst.rate == 0.6 and worst.value == 0.1 and worst.model == "m"
    assert strongest_single(worst) == ("d/x/fgsm[eps=0.1]/m", 0.8)  # tie with pgd on the first 10: first by name


@pytest.mark.parametrize("seed", range(5))
def test_never_above_any_single_attack(seed):
    rng = np.random.default_rng(seed)
    attacks = ("fgsm", "bim", "mim", "pgd")
    records = [_record(a, rng.integers(0, 2, size=int(rng.integers(5, 40))).tolist()) for a in attacks]
    (worst,) = worst_case_records(records, PREFIX)
    for r in records:
        assert worst.rate <= per_example(r)[: worst.n].mean()


def test_only_l_inf_radii_are_pooled():
    """An L2 eps of the same value is another radius, and an attack the registry does not know has no known
    norm: neither joins the L-inf worst case."""
    linf = [_record("fgsm", [1, 1, 1, 1]), _record("pgd", [1, 1, 1, 0])]
    (worst,) = worst_case_records([*linf, _record("square_l2", [0, 0, 0, 0]), _record("unknown", [0, 0, 0, 0])], PREFIX)
    assert worst.config["components"] == ["d/x/fgsm[eps=0.1]/m", "d/x/pgd[eps=0.1]/m"] and worst.hits == 3
    assert worst_case_records([_record("square_l2", [1, 0]), _record("pgd_l2", [0, 1])], PREFIX) == []


def test_worst_case_of_a_real_run(tmp_path):
    preset = tiny_preset(tmp_path, ["O:SOFTMAX:CE"], "fgsm", "whitebox_untargeted", "pgd")
    out = tmp_path / "store"
    args = ["matrix", "--dataset", "mnist", "--preset", str(preset), "--no-progress", "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--reports-dir", str(tmp_path / "reports")])
    assert result.exit_code == 0, result.output
    records = ResultsStore(out / "results.sqlite").records()
    attacks = [r for r in records if r.attack in ("fgsm", "pgd")]
    (worst,) = worst_case_records(records)
    assert worst.rate <= min(r.rate for r in attacks)
    assert worst.n == 10
    # the run stored it as a cell like any other, and the gradient health of its model beside it
    (stored,) = [r for r in records if r.attack == "worst_case"]
    assert (stored.cell_hash, stored.hits, stored.n) == (worst.cell_hash, worst.hits, worst.n)
    assert {r.attack for r in records if r.setting == "diagnostics"} == set(CHECKS)
    # every row stores the images it ran on: the cell's seeded draw, one index per outcome
    for r in records:
        assert r.indices().tolist() == draw_indices(10_000, r.n, r.seed).tolist(), r.name
    # the report reads the stored cell: its table has the worst case of this eps
    readme = (tmp_path / "reports" / "mnist" / "README.md").read_text()
    assert short(worst) in readme


def test_a_stale_worst_case_is_replaced_not_kept(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    records = [_record(a, [1, 1, 0, 1]) for a in ("fgsm", "bim")]
    for r in records:
        store.put(r)
    first = store_worst_cases(store, "d", PREFIX)
    store.put(_record("mim", [0, 0, 0, 0]))  # a new, stronger attack: a new worst case
    second = store_worst_cases(store, "d", PREFIX)
    stored = [r for r in store.records() if r.attack == "worst_case"]
    assert [r.cell_hash for r in stored] == [second[0].cell_hash] != [first[0].cell_hash]
    assert stored[0].rate == 0.0


def test_stored_image_indices_are_used_instead_of_a_redraw():
    """A record that stores its images is matched by them: the worst case never redraws what a cell ran on."""
    from bench.results.store import encode_indices
    from bench.results.worst_case import image_indices

    a = _record("fgsm", [1, 0, 1, 1])
    b = _record("pgd", [1, 1, 1, 1, 0, 1])
    a.image_indices = encode_indices([7, 20, 31, 40])
    b.image_indices = encode_indices([5, 7, 9, 20, 31, 40])  # a superset, in dataset order
    assert image_indices(a).tolist() == [7, 20, 31, 40]
    (worst,) = worst_case_records([a, b])
    # image 20 falls to fgsm, image 31 to pgd; 7 and 40 survive both
    assert per_example(worst).tolist() == [True, False, False, True]
    assert worst.indices().tolist() == [7, 20, 31, 40]
