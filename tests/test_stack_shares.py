"""scripts/stack_shares.py: a py-spy raw profile split into the network, the L-BFGS solvers' steps and the rest."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "stack_shares.py"


def load_script():
    spec = importlib.util.spec_from_file_location("stack_shares", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_samples_are_split_by_their_innermost_part_and_only_inside_a_craft():
    craft = "main (x.py:1);Crafter.craft_group (bench/matrix/craft.py:90);LBFGSAttack._evaluate (lbfgs.py:185)"
    lines = [
        f"{craft};Module._call_impl (module.py:1787);conv (conv.py:560) 30",
        f"{craft};grad (__init__.py:1);_engine_run_backward (graph.py:1072) 50",
        "main (x.py:1);Crafter.craft_group (craft.py:90);_send (b.py:1);lbfgsb_steps (_lbfgsb.py:51) 15",
        f"{craft};stack (shape_base.py:465) 5",
        "main (x.py:1);Crafter.craft_group (c.py:90);LBFGSAttack._solve_with_torch (l.py:9);"
        "ProjectedLBFGS.tell (p.py:1) 7",
        "main (x.py:1);measure_throughput (passes.py:90);_engine_run_backward (graph.py:1072) 999",  # not a craft
    ]
    total, parts = load_script().shares(lines)
    assert total == 107
    assert parts == {
        "network forward": 30,
        "network backward": 50,
        "SciPy L-BFGS-B steps": 15,
        "batched L-BFGS steps": 7,
        "the attack's own": 5,
    }
