"""The report's "Does the robustness hold?" section: per model and L-inf eps, the papers' attacks, the strongest
attack the harness ran, the per-example worst case over all of them, the flags, and a verdict line.

The verdict is deliberately conservative: a model's robustness "holds" only if the attacks that know the
model (margin PGD and the gradient-free Square attack) ran on it and no flag that compares results fired;
otherwise it is "unverified" (and says what is missing) or "does not hold" (and says which flags fired).
A blind loss gradient (``diagnostics.BLIND``) alone only adds a warning: those attacks do not use it.
"""

from __future__ import annotations

import math
from collections import defaultdict

from tabulate import tabulate

from bench.attacks import attack_names
from bench.results import diagnostics
from bench.results.flags import Flag, all_flags, papers_attacks
from bench.results.metrics import interval_text
from bench.results.store import Record
from bench.results.worst_case import ATTACK, strongest_single


def verdict_attacks() -> tuple[str, ...]:
    """What must have run before a verdict can say "holds" (margin PGD, Square)."""
    return attack_names(lambda f: f.needed_for_verdict)


def harness_attacks() -> tuple[str, ...]:
    """The L-inf attacks that know the model, gradient or not (margin PGD, its pre-tanh view, APGD, Square,
    AutoAttack)."""
    return attack_names(lambda f: f.norm == math.inf and f.knows_model)


def _attack_label(cell_name: str) -> str:
    """'mim[eps=0.1]' or 'mim[eps=0.1], transfer from O:SOFTMAX:CE', from a cell's name."""
    _, setting, attack, where = cell_name.split("/", 3)
    return f"{attack}, transfer from {where.split('->')[0]}" if setting == "transfer" else attack


def verdict(model: str, records: list[Record], flags: list[Flag]) -> str:
    """'does not hold' when results contradict each other; a blind gradient alone only warns, because the
    attacks that know the model do not use that gradient: if they ran and agree, the numbers hold."""
    mine = [f for f in flags if f.model == model]
    evidence = sorted({f.check for f in mine if f.check not in diagnostics.BLIND})
    blind = sorted({f.check for f in mine if f.check in diagnostics.BLIND})
    if evidence:
        return f"does not hold: {', '.join(evidence + blind)} (see the flags below)"
    ran = {r.attack for r in records if r.model == model and r.status == "ok"}
    missing = [a for a in verdict_attacks() if a not in ran]
    warning = (
        f"; the loss attacks are blind on part of the images ({', '.join(blind)}): quote the worst case"
        if blind
        else ""
    )
    if missing:
        return f"unverified: {', '.join(missing)} not run on this model; no flag fired on what did run{warning}"
    if blind:
        return "holds at the worst case: the attacks that know the model ran and agree with the others" + warning
    return "holds: the attacks that know the model ran and no flag fired; quote the worst case"


def _strongest(members: list[Record], attacks: tuple[str, ...]) -> str:
    """'name rate [low, high] (n)' of the member attack with the lowest accuracy among ``attacks``."""
    mine = [m for m in members if m.attack in attacks]
    if not mine:
        return "—"
    best = min(mine, key=lambda r: r.rate)
    return f"{_attack_label(best.name)}: {interval_text(best)} (n={best.n})"


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
    "clean",
    "papers' strongest [95%]",
    "harness's strongest [95%]",
    "strongest on shared images",
    "worst case [95%]",
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
        interval_text(w),
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
    rows = [[r.model, f"{r.value:g}", r.attack, interval_text(r), r.n] for r in cells]
    headers = ["model", "L2 eps", "attack", "accuracy [95%]", "images"]
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
    verdicts = [f"- **{m}**: {verdict(m, ok, flags)}.{_gradient_line(m, ok)}" for m in models]
    flag_rows = [[f.model, f.check, f.detail] for f in flags]
    flag_table = (
        tabulate(flag_rows, ["model", "flag", "evidence"], tablefmt="github") if flag_rows else "No flag fired."
    )
    l2 = l2_table(ok)
    parts = ["### Does the robustness hold?", "", INTRO, "", table, "", *([l2] if l2 else []), *verdicts]
    return "\n".join([*parts, "", flag_table, ""])
