"""reports/benchmarks.md from pytest-benchmark's JSON: groups, medians and throughput; a wrong file is refused."""

from __future__ import annotations

import json

import pytest

from bench.errors import ConfigError
from bench.reports.benchmarks import benchmarks_markdown, write_benchmarks_report


def _bench(name, group, median, params=None):
    stats = {"median": median, "min": median * 0.9, "max": median * 1.2, "rounds": 3, "mean": median}
    return {"name": name, "group": group, "stats": stats, "extra_info": {"params": params} if params else {}}


DATA = {
    "machine_info": {"cpu": {"brand_raw": "Test CPU", "count": 2}, "machine": "x86_64", "python_version": "3.11.9"},
    "commit_info": {"id": "0123456789abcdef"},
    "datetime": "2026-11-23T00:00:00",
    "benchmarks": [
        _bench("test_attack_batch[pgd]", "attacks", 0.5, {"eps": 0.3, "max_iter": 10}),
        _bench("test_attack_batch[fgsm]", "attacks", 0.02, {"eps": 0.1}),
        _bench("test_loss_gradient[hinge]", "grad", 0.004),
    ],
}


def test_tables_per_group_sorted_by_median_with_throughput():
    text = benchmarks_markdown(DATA, "b.json")
    assert "Test CPU, 2 logical CPUs" in text and "commit 0123456789" in text
    attacks = text.split("## attacks")[1].split("## grad")[0]
    assert attacks.index("attack_batch[fgsm]") < attacks.index("attack_batch[pgd]")
    pgd_row = next(line for line in attacks.splitlines() if "[pgd]" in line)
    assert "eps 0.3, max_iter 10" in pgd_row and "| 500.0 " in pgd_row and "| 256 " in pgd_row  # 128 / 0.5 s
    assert "| 32000 " in text  # 128 images / 4 ms


def test_wrong_file_is_refused_with_the_command_to_make_it(tmp_path):
    with pytest.raises(ConfigError, match="not a pytest-benchmark JSON file"):
        benchmarks_markdown({"foo": 1}, "x.json")
    with pytest.raises(ConfigError, match="--benchmark-json="):
        write_benchmarks_report(tmp_path / "missing.json", tmp_path / "out.md")
    good = tmp_path / "b.json"
    good.write_text(json.dumps(DATA))
    assert write_benchmarks_report(good, tmp_path / "r" / "out.md").read_text().startswith("# Benchmarks")
