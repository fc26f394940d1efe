"""The README's Python example, run exactly as written, and what it promises: a DataFrame with a column per
attack parameter, from the same store the command line writes, resumed on a second run."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"


def readme_block(marker: str, language: str) -> str:
    text = README.read_text()
    match = re.search(rf"<!-- {marker}:[^>]*-->\n```{language}\n(.*?)```", text, re.S)
    assert match, f"README has no ```{language} block after <!-- {marker}: ... -->"
    return match.group(1)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api_example")
    with contextlib.chdir(folder):
        out = io.StringIO()
        namespace: dict = {}
        with contextlib.redirect_stdout(out):
            exec(compile(readme_block("api-example", "python"), "README.md", "exec"), namespace)
    return folder, namespace, out.getvalue()


def test_the_readme_example_runs_and_prints_the_cells(example):
    folder, namespace, printed = example
    assert (folder / "runs" / "example" / "results.sqlite").is_file()
    fgsm = namespace["frame"].query("attack == 'fgsm'")
    assert set(fgsm.setting) == {"whitebox_untargeted", "whitebox_targeted"}
    untargeted = fgsm[fgsm.setting == "whitebox_untargeted"].sort_values("eps")
    assert list(untargeted.eps) == [0.01, 0.05, 0.1, 0.2]  # the quick preset's sweep, each eps its own column value
    assert (untargeted.n == 100).all()
    assert untargeted.rate.is_monotonic_decreasing  # more budget, fewer images still right
    assert "whitebox_untargeted" in printed and "0.01" in printed


def test_a_second_run_resumes_from_the_same_store(example):
    import bench

    folder, namespace, _ = example
    first = namespace["run"].summary
    again = bench.run_matrix(
        "mnist", preset="quick", models=["O:SOFTMAX:CE"], attacks=["fgsm"], n_samples={"fgsm": 100},
        out=folder / "runs" / "example", progress=False,
    )  # fmt: skip
    assert first.done > 0 and again.summary.done == 0 and again.summary.skipped == first.done
    assert again.frame().equals(namespace["frame"])
