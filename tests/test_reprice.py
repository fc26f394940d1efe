"""`bench report --reprice`: every timed cell gets its pass price again, at the batch size its attack ran with."""

from __future__ import annotations

import dataclasses

from click.testing import CliRunner

from bench.cli import main
from bench.results.store import ResultsStore
from tests.conftest import tiny_preset


def test_reprice_restores_the_pass_price_of_every_timed_cell(tmp_path):
    preset = tiny_preset(tmp_path, ["O:SOFTMAX:CE"], "fgsm", "whitebox_untargeted", "pgd")
    out = tmp_path / "store"
    args = ["matrix", "--dataset", "mnist", "--preset", str(preset), "--no-progress", "--out", str(out)]
    assert CliRunner().invoke(main, [*args, "--reports-dir", str(tmp_path)]).exit_code == 0
    store = ResultsStore(out / "results.sqlite")
    before = {r.name: r for r in store.records() if r.forward_passes}  # the attack cells, not diagnostics
    for r in before.values():
        store.put(dataclasses.replace(r, pass_seconds=0.0))
    args = ["report", "--dataset", "mnist", "--out", str(out), "--reports-dir", str(tmp_path), "--reprice"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "repriced 2 cells" in result.output
    after = {r.name: r for r in store.records() if r.name in before}
    for name, r in after.items():
        assert r.pass_seconds > 0 and r.hits == before[name].hits and r.seconds == before[name].seconds
        # 10 images ran in one batch of 10 and are priced at that batch, as the run priced them
        assert 0.2 < r.pass_seconds / before[name].pass_seconds < 5
