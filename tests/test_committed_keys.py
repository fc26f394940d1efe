"""The committed results were measured on today's keys: every stored cell of the committed stores is a cell that
today's plan makes, with the same hash and name, on models of the same store keys. A change that moved a hash or
a key (a new field in a spec, a renamed parameter) would orphan every committed number and fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.matrix.plan import MatrixOptions, make_plan
from bench.results.store import read_records

REPORTS = Path(__file__).parent.parent / "reports"
PRESETS = Path(__file__).parent.parent / "bench" / "matrix" / "presets"  # a preset not registered by name: its file
STORES = [
    ("mnist", "paper", REPORTS / "mnist" / "store"),
    ("fashion_mnist", "paper", REPORTS / "fashion_mnist" / "store"),
    ("mnist", "vu2018", REPORTS / "vu2018" / "mnist" / "store"),
    ("mnist", "factorial", REPORTS / "factorial" / "mnist" / "store"),
    ("fashion_mnist", "factorial", REPORTS / "factorial" / "fashion_mnist" / "store"),
    ("mnist", "densenet", REPORTS / "densenet" / "mnist" / "store"),
    ("mnist", str(PRESETS / "vu2018_fast_clipped.toml"), REPORTS / "vu2018_fast_clipped" / "mnist" / "store"),
    ("mnist", str(PRESETS / "vu2018_fast.toml"), REPORTS / "vu2018_fast" / "mnist" / "store"),
    ("mnist", str(PRESETS / "vu2018_small.toml"), REPORTS / "vu2018_small" / "mnist" / "store"),
    ("mnist", str(PRESETS / "vu2018_small_seeds.toml"), REPORTS / "vu2018_small_seeds" / "mnist" / "store"),
]
IDS = [f"{store.parent.relative_to(REPORTS)}-{Path(preset).stem}" for _, preset, store in STORES]
# Images per cell a store was run with where the preset has since raised them: the Fashion-MNIST paper store ran
# L-BFGS, the codeword CW-L2 and CW-L2 on 20 images, before the per-image L-BFGS and the CW pools paid for more
RUN_WITH = {REPORTS / "fashion_mnist" / "store": {"lbfgs": 20, "cw_l2_codeword": 20, "cw_l2": 20}}


@pytest.mark.parametrize(("dataset", "preset", "store"), STORES, ids=IDS)
def test_committed_cells_keep_their_hashes_and_models_their_keys(dataset, preset, store):
    plan = make_plan(MatrixOptions(dataset=dataset, preset=preset, n_samples=RUN_WITH.get(store, {})))
    planned = {c.hash: c for c in plan.cells}
    stored = [r for r in read_records(store) if r.setting not in ("diagnostics",) and r.attack != "worst_case"]
    assert len(stored) >= 18  # the smallest committed stores (vu2018_fast*, vu2018_small) hold 18 cells
    orphans = [r.name for r in stored if r.cell_hash not in planned]
    assert not orphans, orphans[:5]
    assert all(planned[r.cell_hash].name == r.name for r in stored)
    assert {r.model_key for r in stored} == {s.key() for s in plan.specs.values()}
