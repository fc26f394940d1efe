"""The report's "What changes robustness" section: per factor, two model kinds that differ in that factor only,
compared on the same images under the per-image worst case and under FGSM, per training seed and eps.

Input: the records of one dataset, as the report gets them (``bench.reports.dataset.report_records``): the derived
``worst_case`` cells (``bench.results.worst_case``) and the white-box ``fgsm`` cells, each with its per-example
outcome and image indices. Without stored worst-case cells they are derived here from the records given. A model
named ``<kind>@s<seed>`` is training seed ``seed`` of ``<kind>``; a plain ``<kind>`` is one unseeded model. When
several cells hold the same model, attack and eps, the one with the most images is used.

The statistics are ``bench.results.paired``'s (McNemar per seed, Holm across seeds, the seed spread); every
number and every word that states a finding in the generated sentences comes from its ``Comparison`` objects.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from tabulate import tabulate

from bench.results.paired import HIGHER, LOWER, NONE, WITHIN_SPREAD, Comparison, Estimate, Outcome, compare
from bench.results.store import Record
from bench.results.worst_case import ATTACK, Indices, image_indices, worst_case_records
from models.seeds import recipe_tagged, split_recipe, split_seeded_name
from models.spec import ARCHS

FGSM = "fgsm"
ATTACK_TEXT = {ATTACK: "worst-case", FGSM: "FGSM"}
Outcomes = dict[tuple[str, str, float], dict[int | None, Outcome]]  # (attack, kind, eps) -> training seed -> outcome


@dataclass(frozen=True)
class Factor:
    """``changed`` differs from ``reference`` in this factor only (or as ``note`` says); ``change`` names the change
    as the subject of a sentence."""

    name: str
    changed: str
    reference: str
    change: str
    note: str = ""


FACTORS: tuple[Factor, ...] = (
    Factor("representation", "R:TANH:MSE", "O:TANH:MSE", "The codeword representation (against one-hot, tanh, MSE)"),
    Factor("loss", "R:TANH:MSE", "R:TANH:CE", "MSE to the codeword (against cross-entropy over codeword distances)"),
    Factor("saturating activation", "R:TANH:MSE", "R:LINEAR:MSE", "The tanh output (against a linear one)"),
    *(
        Factor(f"codeword length {d}", f"R:TANH:MSE_d{d}", "R:TANH:MSE", f"Codeword length {d} (against 128)")
        for d in (16, 64, 256, 1024)
    ),
    Factor("loss under one-hot softmax", "O:SOFTMAX:MSE", "O:SOFTMAX:CE", "MSE (against cross-entropy, softmax)"),
    Factor(
        "representation and activation",
        "R:TANH:MSE",
        "O:SOFTMAX:MSE",
        "Codeword targets with a tanh head (against one-hot softmax, both MSE)",
        note="the representation and the output activation change together: this pair cannot separate them",
    ),
    Factor("hinge loss", "hinge", "O:SOFTMAX:CE", "The hinge loss (against cross-entropy)"),
    Factor("LMCL loss", "lmcl_s10_m0.3", "O:SOFTMAX:CE", "The LMCL loss, s=10, m=0.3 (against cross-entropy)"),
)


@dataclass(frozen=True)
class FactorResult:
    factor: Factor
    comparisons: tuple[Comparison, ...]  # worst case first, then FGSM, each by eps

    def by_eps(self, attack: str) -> dict[float, Comparison]:
        return {c.eps: c for c in self.comparisons if c.attack == attack}


def collect_outcomes(records: list[Record], indices: Indices = image_indices) -> Outcomes:
    """The worst-case and white-box FGSM outcomes of ``records`` (one dataset), by attack, model kind and eps."""
    ok = [r for r in records if r.status == "ok" and r.param == "eps" and r.per_example is not None]
    datasets = sorted({r.dataset for r in ok})
    if len(datasets) > 1:
        raise ValueError(f"records of datasets {', '.join(datasets)}; expected the records of one dataset.")
    worst = [r for r in ok if r.attack == ATTACK] or worst_case_records(ok, indices)
    fgsm = [r for r in ok if r.attack == FGSM and r.setting == "whitebox_untargeted"]
    chosen: dict[tuple, Record] = {}
    for r in [*worst, *fgsm]:
        kind, seed = split_seeded_name(r.model)
        key = (r.attack, kind, float(r.value), seed)
        if key not in chosen or (r.n, r.name) > (chosen[key].n, chosen[key].name):
            chosen[key] = r
    out: Outcomes = defaultdict(dict)
    for (attack, kind, eps, seed), r in chosen.items():
        out[(attack, kind, eps)][seed] = Outcome.of(r, indices)
    return dict(out)


def factor_results(
    records: list[Record],
    indices: Indices = image_indices,
    alpha: float = 0.05,
    factors: tuple[Factor, ...] = FACTORS,
) -> list[FactorResult]:
    """Every factor whose two model kinds both have outcomes, compared at each eps both have (worst case, FGSM)."""
    outcomes = collect_outcomes(records, indices)
    results = [FactorResult(f, _compare_factor(f, outcomes, alpha)) for f in factors]
    return [r for r in results if r.comparisons]


def _compare_factor(factor: Factor, outcomes: Outcomes, alpha: float) -> tuple[Comparison, ...]:
    """The factor's comparisons under each attack at every eps where both its model kinds have outcomes."""
    out = []
    for attack in (ATTACK, FGSM):
        for eps in sorted(e for (at, kind, e) in outcomes if at == attack and kind == factor.changed):
            reference = outcomes.get((attack, factor.reference, eps))
            if reference is not None:
                changed = outcomes[(attack, factor.changed, eps)]
                names = (factor.changed, factor.reference)
                out.append(compare(changed, reference, names=names, attack=attack, eps=eps, alpha=alpha))
    return tuple(out)


def what_changes_robustness(records: list[Record], indices: Indices = image_indices, alpha: float = 0.05) -> str:
    """The markdown section for ``records`` of one dataset; empty when no factor's models are both there."""
    factors = FACTORS + recipe_factors({split_seeded_name(r.model)[0] for r in records})
    return render_section(factor_results(records, indices, alpha, factors), alpha)


# Recipes that differ in one step, for models of one kind trained by both: (changed, reference, name, change)
RECIPE_STEPS: tuple[tuple[str, str, str, str], ...] = (
    (
        "fgsm_rs_at",
        "fgsm_rs_clipped_at",
        "FGSM-RS start",
        "Taking FGSM-RS's gradient at the random start as drawn (against clipped to [0, 1] first)",
    ),
    (
        "small_cnn_fgsm_rs_at",
        "fgsm_rs_at",
        "network under FGSM-RS",
        "Wong et al.'s small CNN (against the Table I CNN, both FGSM-RS trained)",
    ),
)


def recipe_factors(labels: set[str]) -> tuple[Factor, ...]:
    """For models named by their training recipe (``O:SOFTMAX:CE+fgsm_rs_at``, a store shown beside the report's
    own): each factor again among the models of that recipe, the recipe itself against the report's own model of
    the same label where both use the same network, and the RECIPE_STEPS between two recipes of one kind."""
    out = []
    for tagged in sorted(labels):
        label, recipe = split_recipe(tagged)
        if recipe is None:
            continue
        for changed, reference, name, change in RECIPE_STEPS:
            if recipe == changed and recipe_tagged(label, reference) in labels:
                out.append(Factor(f"{name} for {label}", tagged, recipe_tagged(label, reference), change))
        if label in labels and not recipe.startswith(tuple(f"{arch}_" for arch in ARCHS)):
            change = f"Training {label} by {recipe} (against the report's own {label})"
            out.append(Factor(f"training recipe {recipe}", tagged, label, change))
        for f in FACTORS:
            if f.changed == label and recipe_tagged(f.reference, recipe) in labels:
                name, reference = f"{f.name} under {recipe}", recipe_tagged(f.reference, recipe)
                out.append(Factor(name, tagged, reference, f"{f.change} under {recipe} training", f.note))
    return tuple(out)


def render_section(results: list[FactorResult], alpha: float = 0.05) -> str:
    if not results:
        return ""
    parts = ["### What changes robustness", "", _intro(alpha), ""]
    for result in results:
        parts += [render_factor(result), ""]
    return "\n".join(parts)


def render_factor(result: FactorResult) -> str:
    f = result.factor
    heading = f"#### {f.name}: {f.changed} against {f.reference}"
    note = [f"_Note: {f.note}._", ""] if f.note else []
    headers = ["attack", "eps", f"{f.changed} [95%]", f"{f.reference} [95%]", "difference [95%]", "seed spread"]
    headers += ["McNemar per seed: b/c, p (Holm)", "verdict"]
    rows = [_row(c) for c in result.comparisons]
    table = tabulate(rows, headers, tablefmt="github", disable_numparse=True)
    return "\n".join([heading, "", *note, table, "", factor_sentence(result)])


def factor_sentence(result: FactorResult) -> str:
    """One sentence from the numbers: the effect at the headline eps (FGSM beside the worst case when both ran),
    then the verdicts at the other eps."""
    primary = ATTACK if result.by_eps(ATTACK) else FGSM
    eps = headline_eps(result, primary)
    main = result.by_eps(primary)[eps]
    contrast = result.by_eps(FGSM).get(eps) if primary == ATTACK else None
    if contrast is None:
        lead = _clause(main, at_eps=True)
    else:
        joint = "and" if contrast.verdict == main.verdict else "but"
        lead = f"{_clause(contrast, at_eps=True)} {joint} {_clause(main, at_eps=False)}"
    return f"{result.factor.change} {lead}{_elsewhere(result, primary, eps)}."


def headline_eps(result: FactorResult, primary: str) -> float:
    """The eps where ``primary`` finds its largest difference; without one, where FGSM does; else the eps of the
    largest difference. The smallest such eps on ties."""
    main = result.by_eps(primary)
    found = [c for c in main.values() if c.verdict in (HIGHER, LOWER)]
    fgsm = [c for eps, c in result.by_eps(FGSM).items() if eps in main and c.verdict in (HIGHER, LOWER)]
    pool = found or fgsm or list(main.values())
    return min(pool, key=lambda c: (-abs(c.difference.value), c.eps)).eps


def _clause(c: Comparison, at_eps: bool) -> str:
    where = f" at eps {c.eps:g}" if at_eps else ""
    what = f"{ATTACK_TEXT[c.attack]} accuracy{where}"
    if c.verdict == NONE:
        return f"does not change {what} detectably ({c.difference.value:+.3f}, {_qualifier(c)})"
    verb = "raises" if c.difference.value > 0 else "lowers"
    return f"{verb} {what} by {abs(c.difference.value):.3f} ({_qualifier(c)})"


def _qualifier(c: Comparison) -> str:
    k = len(c.seeds)
    if c.verdict == WITHIN_SPREAD:
        return f"within the seed spread {c.spread:.3f}"
    if c.verdict == NONE:
        if c.spread is None:
            return f"p = {c.seeds[0].p:.2g}, one seed, seed spread unknown"
        if c.significant_seeds == 0:
            return f"significant on none of the {k} seeds"
        return f"significant in that direction on {c.significant_seeds} of {k} seeds"
    if c.spread is None:
        return f"p = {c.seeds[0].p:.2g}, one seed, seed spread unknown"
    return f"significant on all {k} seeds, beyond the seed spread {c.spread:.3f}"


VERDICT_TEXT = {
    HIGHER: "higher",
    LOWER: "lower",
    NONE: "not detectably different",
    WITHIN_SPREAD: "different within the seed spread",
}


def _elsewhere(result: FactorResult, attack: str, eps: float) -> str:
    """'; at the other eps worst-case accuracy is higher (eps 0.05), not detectably different (eps 0.1, 0.3)'."""
    groups: dict[str, list[str]] = defaultdict(list)
    for other, c in sorted(result.by_eps(attack).items()):
        if other != eps:
            groups[VERDICT_TEXT[c.verdict]].append(f"{other:g}")
    if not groups:
        return ""
    listed = ", ".join(f"{text} (eps {', '.join(e)})" for text, e in groups.items())
    return f"; at the other eps {ATTACK_TEXT[attack]} accuracy is {listed}"


def _row(c: Comparison) -> list[str]:
    tests = "; ".join(
        f"{'' if t.seed is None else f's{t.seed}: '}{t.b}/{t.c}, p={t.p:.2g} ({t.p_holm:.2g})" for t in c.seeds
    )
    spread = "unknown (one seed)" if c.spread is None else f"{c.spread:.3f}"
    diff = f"{c.difference.value:+.3f} [{c.difference.low:+.3f}, {c.difference.high:+.3f}]"
    return [ATTACK_TEXT[c.attack], f"{c.eps:g}", _est(c.accuracy_a), _est(c.accuracy_b), diff, spread, tests, c.verdict]


def _est(e: Estimate) -> str:
    return f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"


def _intro(alpha: float) -> str:
    return (
        "Each factor compares two model kinds that differ in it alone (or as noted), on the same images, per "
        "training seed: accuracy is the mean over seeds [95% interval over images]; difference = first model − "
        "second. McNemar's exact test per seed counts b images robust only under the first model and c only "
        f"under the second; p-values are Holm-adjusted across seeds. A difference is called one when every seed "
        f"is significant at {alpha:g} in the same direction and the mean difference exceeds the seed spread (the "
        "larger of the two models' ranges of per-seed accuracy); with one seed the spread is unknown."
    )
