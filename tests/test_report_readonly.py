"""A report is a pure function of the stores: `bench report` writes nothing into the results store it reads,
and derives the worst case from the other cells, so a store without stored worst cases reports the same."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from click.testing import CliRunner

from bench.cli import main
from bench.results.store import ResultsStore

COMMITTED = Path(__file__).parent.parent / "reports" / "mnist" / "store" / "results.sqlite"


def _fingerprint(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _robustness(readme: Path) -> str:
    text = readme.read_text()
    return text[text.index("### Every attack beside the worst case") : text.index("### What each attack sees")]


def test_report_reads_without_writing_and_derives_the_worst_case(tmp_path):
    stored = tmp_path / "stored"
    stored.mkdir()
    shutil.copy(COMMITTED, stored / "results.sqlite")
    bare = tmp_path / "bare"
    shutil.copytree(stored, bare)
    ResultsStore(bare / "results.sqlite").replace_derived("mnist", "worst_case", [])  # as if never stored
    before = _fingerprint(bare)
    runner = CliRunner()
    for folder in (stored, bare):
        done = runner.invoke(main, ["report", "--dataset", "mnist", "--out", str(folder), "--reports-dir",
                                    str(tmp_path / f"{folder.name}-reports")])  # fmt: skip
        assert done.exit_code == 0, done.output
    assert _fingerprint(bare) == before  # not a byte written, no -wal or -shm left behind
    with_stored = _robustness(tmp_path / "stored-reports" / "mnist" / "README.md")
    derived = _robustness(tmp_path / "bare-reports" / "mnist" / "README.md")
    assert "worst case" in derived and with_stored == derived
    assert "| R:TANH:MSE" in derived
