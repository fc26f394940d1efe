"""Carlini et al.'s (2019) checklist and AutoAttack's sanity checks as flags, computed per model from stored
records. Each flag says which cells disagree and why that matters; reports/FLAGS.md explains each one.

A flag fires only when the difference is beyond sampling error (the two Wilson intervals do not overlap),
so a clean model with small samples stays quiet, and a flag is evidence, not noise.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from bench.attacks import attack_names
from bench.attacks.family import ITERATIVE, SINGLE
from bench.results import diagnostics
from bench.results.metrics import interval_text
from bench.results.store import Record

# Which attacks each check compares, asked of the registry's descriptions. Flags compare accuracies at the
# same eps, so only L-inf attacks take part (an L2 eps is another radius; minimal attacks have none).


def single_step_attacks() -> tuple[str, ...]:
    """L-inf attacks of one gradient step (FGSM)."""
    return attack_names(lambda f: f.norm == math.inf and f.steps == SINGLE)


def iterative_attacks() -> tuple[str, ...]:
    """L-inf gradient attacks that iterate (BIM, MIM, PGD, margin PGD, APGD); not an ensemble (AutoAttack),
    which keeps the first success of several attacks and so cannot be weaker than one step for want of
    converging."""
    return attack_names(lambda f: f.norm == math.inf and f.uses_gradient and f.steps == ITERATIVE)


def gradient_free_attacks() -> tuple[str, ...]:
    """L-inf attacks that only query the scores (Square)."""
    return attack_names(lambda f: f.norm == math.inf and not f.uses_gradient)


def gradient_attacks() -> tuple[str, ...]:
    return (*single_step_attacks(), *iterative_attacks())


LARGE_EPS = 0.5  # on [0, 1] pixels, an L-inf ball this large contains images of every class
CHANCE_SLACK = 0.05  # accuracy this far above chance at LARGE_EPS still counts as "at chance"


@dataclass(frozen=True)
class Flag:
    check: str  # the key of its paragraph in reports/FLAGS.md
    model: str
    detail: str  # which cells, which numbers


def _above(a: Record, b: Record) -> bool:
    """a's rate is above b's beyond sampling error (their 95% intervals do not overlap)."""
    return a.ci_low is not None and b.ci_high is not None and a.ci_low > b.ci_high


def _fmt(r: Record) -> str:
    return f"{r.attack} eps={r.value:g}: {interval_text(r)} (n={r.n})"


def _untargeted(records: list[Record]) -> dict[str, list[Record]]:
    by_model: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if r.status == "ok" and r.metric == "accuracy" and r.param == "eps" and r.rate is not None:
            by_model[r.model].append(r)
    return by_model


def iterative_weaker_than_single_step(records: list[Record]) -> list[Flag]:
    """An iterative attack that leaves more images correct than FGSM at the same eps is not converging
    (or the loss surface masks its gradient)."""
    flags = []
    single_step, iterative = single_step_attacks(), iterative_attacks()
    for model, recs in _untargeted(records).items():
        white = [r for r in recs if r.setting == "whitebox_untargeted"]
        for single in (r for r in white if r.attack in single_step):
            for it in (r for r in white if r.attack in iterative and r.value == single.value):
                if _above(it, single):
                    flags.append(Flag("iterative_vs_single_step", model, f"{_fmt(it)} above {_fmt(single)}"))
    return flags


def whitebox_weaker_than_transfer(records: list[Record]) -> list[Flag]:
    """Examples crafted on another model should not beat a white-box attack on the model itself."""
    flags = []
    for model, recs in _untargeted(records).items():
        white = {(r.attack, r.value): r for r in recs if r.setting == "whitebox_untargeted"}
        for tr in (r for r in recs if r.setting == "transfer" and r.source != model):
            wb = white.get((tr.attack, tr.value))
            if wb is not None and _above(wb, tr):
                flags.append(
                    Flag(
                        "whitebox_vs_transfer",
                        model,
                        f"white-box {_fmt(wb)} above transfer from {tr.source} {_fmt(tr)}",
                    )
                )
    return flags


def not_at_chance_at_large_eps(records: list[Record], n_classes: int = 10) -> list[Flag]:
    """At eps >= 0.5 every attack worth the name should bring accuracy to chance."""
    flags = []
    gradient = gradient_attacks()
    for model, recs in _untargeted(records).items():
        large = [
            r for r in recs if r.setting == "whitebox_untargeted" and r.value >= LARGE_EPS and r.attack in gradient
        ]
        if large:
            best = min(large, key=lambda r: r.rate)
            if best.ci_low > 1 / n_classes + CHANCE_SLACK:
                flags.append(Flag("chance_at_large_eps", model, f"strongest at eps >= {LARGE_EPS}: {_fmt(best)}"))
    return flags


def gradient_free_stronger(records: list[Record]) -> list[Flag]:
    """A query-only attack that beats every gradient attack at the same eps means the gradients mislead."""
    flags = []
    gradient_free, gradient = gradient_free_attacks(), gradient_attacks()
    for model, recs in _untargeted(records).items():
        white = [r for r in recs if r.setting == "whitebox_untargeted"]
        for free in (r for r in white if r.attack in gradient_free):
            grads = [r for r in white if r.attack in gradient and r.value == free.value]
            if grads and all(_above(g, free) for g in grads):
                best = min(grads, key=lambda r: r.rate)
                flags.append(
                    Flag(
                        "gradient_free_vs_gradient",
                        model,
                        f"{_fmt(free)} below every gradient attack, best {_fmt(best)}",
                    )
                )
    return flags


def budget_sensitive(records: list[Record]) -> list[Flag]:
    """The same attack at the same eps with more iterations or restarts should agree within sampling error;
    if more budget still changes the number, the smaller budget had not converged."""
    flags = []
    for model, recs in _untargeted(records).items():
        groups: dict[tuple, list[Record]] = defaultdict(list)
        for r in recs:
            if r.setting == "whitebox_untargeted":
                groups[(r.attack, r.value)].append(r)
        for (attack, _), same in groups.items():
            if len(same) < 2:
                continue
            ranked = sorted(same, key=_budget)
            small, large = ranked[0], ranked[-1]
            if _budget(large) > _budget(small) and _above(small, large):
                flags.append(
                    Flag(
                        "budget_sensitivity",
                        model,
                        f"{attack}: {_budget_text(small)} {_fmt(small)} vs {_budget_text(large)} {_fmt(large)}",
                    )
                )
    return flags


def _budget(r: Record) -> float:
    p = r.config.get("params", {})
    return p.get("max_iter", 1) * p.get("num_random_init", p.get("nb_random_init", p.get("nb_restarts", 1)))


def _budget_text(r: Record) -> str:
    return f"budget {_budget(r):g}"


def papers_attacks() -> tuple[str, ...]:
    """The papers' L-inf attacks (FGSM, BIM, MIM, PGD), all on the model's loss."""
    return attack_names(lambda f: f.norm == math.inf and f.papers)


def attacks_that_know_the_model() -> tuple[str, ...]:
    """The harness's L-inf gradient attacks built to read the decision rule (margin PGD, its pre-tanh view, APGD,
    AutoAttack)."""
    return attack_names(lambda f: f.norm == math.inf and f.knows_model and f.uses_gradient)


def papers_attacks_overstate(records: list[Record]) -> list[Flag]:
    """An attack that knows the model (the decision margin, APGD's schedule) leaves fewer images correct than
    every one of the papers' attacks at the same eps: the robustness the papers' tables show is the attack's
    weakness, not the model's strength (Tramer et al. 2020)."""
    flags = []
    papers_names, knowing_names = papers_attacks(), attacks_that_know_the_model()
    for model, recs in _untargeted(records).items():
        white = [r for r in recs if r.setting == "whitebox_untargeted"]
        for eps in sorted({r.value for r in white}):
            papers = [r for r in white if r.attack in papers_names and r.value == eps]
            knowing = [r for r in white if r.attack in knowing_names and r.value == eps]
            if papers and knowing:
                best_paper, best_known = min(papers, key=lambda r: r.rate), min(knowing, key=lambda r: r.rate)
                if _above(best_paper, best_known):
                    flags.append(
                        Flag("papers_attacks_overstate", model, f"{_fmt(best_known)} below {_fmt(best_paper)}")
                    )
    return flags


GRADIENT_SHARE_LIMIT = 0.05  # a share of blind images above this (beyond sampling error) fires the flag


def blind_gradients(records: list[Record]) -> list[Flag]:
    """Images where the input gradient of the model's loss is zero, not finite, or below float32's rounding:
    every loss-gradient attack (FGSM, BIM, MIM, PGD, APGD on the loss) stands still on them, so its accuracy
    there measures the gradient, not the model. Computed by the ``diagnostics`` cells (bench/results/diagnostics.py)."""
    flags = []
    for r in records:
        if r.status != "ok" or r.setting != diagnostics.SETTING or r.ci_low is None:
            continue
        if r.attack in diagnostics.BLIND and r.ci_low > GRADIENT_SHARE_LIMIT:
            detail = f"{r.attack}: {r.rate:.1%} of {r.n} images [{r.ci_low:.3f}, {r.ci_high:.3f}]"
            flags.append(Flag(r.attack, r.model, detail))
    return flags


CHECKS = (
    iterative_weaker_than_single_step,
    whitebox_weaker_than_transfer,
    not_at_chance_at_large_eps,
    gradient_free_stronger,
    budget_sensitive,
    papers_attacks_overstate,
    blind_gradients,
)


def all_flags(records: list[Record]) -> list[Flag]:
    return [flag for check in CHECKS for flag in check(records)]
