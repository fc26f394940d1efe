"""The evidence behind the report's answer (``bench.reports.answer``): per model and L-inf eps, the strongest of the
papers' attacks and of the harness's, each on its own images, the strongest on the images they share, the per-example
worst case over all of them, the gradient health, and the flags."""

from __future__ import annotations

import math
from collections import defaultdict

from tabulate import tabulate

from bench.attacks import attack_names
from bench.results import diagnostics
from bench.results.flags import all_flags, papers_attacks
from bench.results.metrics import short
from bench.results.store import Record
from bench.results.worst_case import ATTACK, strongest_single


def harness_attacks() -> tuple[str, ...]:
    """The L-inf attacks that know the model, gradient or not (margin PGD, its pre-tanh view, APGD, Square,
    AutoAttack)."""
    return attack_names(lambda f: f.norm == math.inf and f.knows_model)


def _attack_label(cell_name: str) -> str:
    """'mim[eps=0.1]' or 'mim[eps=0.1], transfer from O:SOFTMAX:CE', from a cell's name."""
    _, setting, attack, where = cell_name.split("/", 3)
    source, _, target = where.partition("->")
    # the transfer table's diagonal (examples crafted on the model itself) is a white-box attack
    return f"{attack}, transfer from {source}" if setting == "transfer" and source != target else attack


def _strongest(members: list[Record], attacks: tuple[str, ...]) -> str:
    """'name rate [low, high] (n)' of the member attack with the lowest accuracy among ``attacks``."""
    mine = [m for m in members if m.attack in attacks]
    if not mine:
        return "—"
    best = min(mine, key=lambda r: r.rate)
    return f"{_attack_label(best.name)}: {short(best)} (n={best.n})"


def _gradient_line(model: str, records: list[Record]) -> str:
    shares = {
        r.attack: r for r in records if r.setting == diagnostics.SETTING and r.model == model and r.status == "ok"
    }
    if not shares:
        return ""
    parts = [f"{check.replace('_', ' ')} {r.rate:.1%}" for check, r in sorted(shares.items())]
    return f" Gradient health on {next(iter(shares.values())).n} images: {', '.join(parts)}."


HEADERS = [
    "model",
    "eps",
    "clean (same images)",
    "papers' strongest",
    "harness's strongest",
    "strongest on shared images",
    "worst case",
    "attacks",
    "images",
]
INTRO = (
    "Per model and L-inf eps: the strongest of the papers' attacks (FGSM, BIM, MIM, PGD on the model's "
    "loss, white-box or transferred), the strongest of the attacks that know the model (margin PGD on the "
    "decision scores, APGD, Square), each on its own images with its interval; the single attack that "
    "left the fewest images correct on the images all cells share; and the worst case per example over "
    "every untargeted attack at that eps (an image counts only if every attack failed on it), stored as "
    "the `worst_case` cell. The worst case is the number to quote. Flags are explained in "
    "`reports/FLAGS.md`; gradient health is the `diagnostics` cells' share of images whose loss gradient "
    "is zero, vanishing (below 1e-8) or whose output is saturated."
)


def _worst_case_row(model: str, w: Record, by_name: dict[str, Record], papers, harness) -> list:
    """One row of the table: a model's worst case at one eps beside the strongest single attacks."""
    members = [by_name[name] for name in w.config["components"] if name in by_name]
    name, alone = strongest_single(w)
    return [
        model,
        f"{w.value:g}",
        f"{w.clean_accuracy:.3f}" if w.clean_accuracy is not None else "—",
        _strongest(members, papers),
        _strongest(members, harness),
        f"{_attack_label(name)}: {alone:.3f}",
        short(w),
        len(w.config["components"]),
        w.n,
    ]


def l2_table(ok: list[Record]) -> str:
    """The L2-bounded attacks (pgd_l2, square_l2) per model and L2 radius: beside, never inside, the L-inf worst case,
    since an L2 radius is not an L-inf one. Empty when no such cell ran."""
    l2 = set(attack_names(lambda f: f.norm == 2))
    cells = sorted(
        (r for r in ok if r.attack in l2 and r.setting == "whitebox_untargeted" and r.param == "eps"),
        key=lambda r: (r.model, r.value, r.attack),
    )
    if not cells:
        return ""
    rows = [[r.model, f"{r.value:g}", r.attack, short(r), r.n] for r in cells]
    headers = ["model", "L2 eps", "attack", "accuracy", "images"]
    return "\n".join(["#### L2 attacks", "", tabulate(rows, headers, tablefmt="github", disable_numparse=True), ""])


def robustness_section(records: list[Record]) -> str:
    ok = [r for r in records if r.status == "ok"]
    if not ok:
        return ""
    worst = [r for r in ok if r.attack == ATTACK]  # derived from the other cells (bench.reports.dataset.report_records)
    flags = all_flags(ok)
    by_name = {r.name: r for r in ok}
    by_model: dict[str, list[Record]] = defaultdict(list)
    for w in worst:
        by_model[w.model].append(w)
    models = sorted({r.model for r in ok})
    papers, harness = papers_attacks(), harness_attacks()
    rows = [
        _worst_case_row(model, w, by_name, papers, harness)
        for model in models
        for w in sorted(by_model.get(model, []), key=lambda r: r.value)
    ]
    table = (
        tabulate(rows, HEADERS, tablefmt="github", disable_numparse=True)
        if rows
        else "_no eps with two or more untargeted attacks yet_"
    )
    gradients = [f"- **{m}**:{line}" for m in models if (line := _gradient_line(m, ok))]
    flag_rows = [[f.model, f.check, f.detail] for f in flags]
    flag_table = (
        tabulate(flag_rows, ["model", "flag", "evidence"], tablefmt="github") if flag_rows else "No flag fired."
    )
    l2 = l2_table(ok)
    parts = ["### Every attack beside the worst case", "", INTRO, "", table, "", *([l2] if l2 else []), *gradients]
    return "\n".join([*parts, "", flag_table, ""])
