"""L2 attacks (pgd_l2, square_l2) in a real tiny run: shown in their own table of the robustness section, by L2
radius, and kept out of the L-inf worst case."""

from __future__ import annotations

import re

from click.testing import CliRunner

from bench.cli import main
from bench.results.metrics import short
from bench.results.store import read_records
from tests.conftest import preset_text


def test_l2_attacks_get_their_own_table_and_stay_out_of_the_linf_worst_case(tmp_path):
    groups = [
        {
            "setting": "whitebox_untargeted",
            "attack": "pgd_l2",
            "params": {"max_iter": 10},
            "sweep": {"eps": [1.0, 3.0]},
        },
        {"setting": "whitebox_untargeted", "attack": "square_l2", "params": {"max_iter": 50}, "sweep": {"eps": [3.0]}},
        {"setting": "whitebox_untargeted", "attack": "fgsm", "sweep": {"eps": [0.1]}},
        {"setting": "whitebox_untargeted", "attack": "pgd", "params": {"max_iter": 5}, "sweep": {"eps": [0.1]}},
    ]
    preset = tmp_path / "l2.toml"
    preset.write_text(
        preset_text("l2", ["O:SOFTMAX:CE"], {"pgd_l2": 20, "square_l2": 20, "fgsm": 20, "pgd": 20}, groups)
    )
    args = ["matrix", "--dataset", "mnist", "--preset", str(preset), "--no-progress", "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(main, [*args, "--reports-dir", str(tmp_path / "reports")])
    assert result.exit_code == 0, result.output
    records = {(r.attack, r.value): r for r in read_records(tmp_path / "run") if r.status == "ok"}
    readme = (tmp_path / "reports" / "mnist" / "README.md").read_text()
    section = readme[readme.index("#### L2 attacks") : readme.index("### What each attack sees")]
    for key in (("pgd_l2", 1.0), ("pgd_l2", 3.0), ("square_l2", 3.0)):
        r = records[key]
        cells = ["O:SOFTMAX:CE", f"{key[1]:g}", key[0], short(r), "20"]
        assert re.search(r"\|\s*" + r"\s*\|\s*".join(map(re.escape, cells)) + r"\s*\|", section), key
    worst = records[("worst_case", 0.1)]
    assert not any("l2" in name for name in worst.config["components"])  # L-inf attacks only
    assert records[("pgd_l2", 3.0)].rate <= records[("pgd_l2", 1.0)].rate + 0.15  # a larger ball, no more robust
