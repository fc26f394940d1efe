"""`bench lipschitz`, `inside`, `pictures`, `compare-art` and `benchmarks-report`: the analyses."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.common import split

EPILOG_LIPSCHITZ = """\b
Examples:
  bench lipschitz --dataset mnist
  bench lipschitz --dataset fashion_mnist --models O:SOFTMAX:CE,O:SOFTMAX:MSE

Writes reports/<dataset>/lipschitz.md (a table per model, the product bound) and
plots/lipschitz_conv.png (Figure 4: each conv layer's bound, model against model).
Models come from the store and are trained first where missing.
"""


@click.command(epilog=EPILOG_LIPSCHITZ)
@click.option("--dataset", required=True, help="mnist, fashion_mnist or cifar10.")
@click.option("--preset", default="paper", show_default=True, help="Whose models and training to take.")
@click.option("--models", multiple=True, help="Comma-separated model names (default: the preset's).")
@click.option("--reports-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
def lipschitz(dataset, preset, models, reports_dir, progress) -> None:
    """Per-layer Lipschitz upper bounds of every model (FFT method, checked by power iteration)."""
    from bench.analyses.run import lipschitz as run

    click.echo(f"wrote {run(dataset, preset, split(models), reports_dir, progress)}")


EPILOG_INSIDE = """\b
Examples:
  bench inside --dataset mnist
  bench inside --dataset mnist --models O:SOFTMAX:CE,lmcl --n-samples 500

Writes reports/<dataset>/inside.md with plots/inside_relative_change.png and
plots/inside_rank_change_pgd.png: per-layer relative change under PGD against
uniform noise of the same eps, and the rank of the clean prediction under PGD.
"""


@click.command(epilog=EPILOG_INSIDE)
@click.option("--dataset", required=True, help="mnist, fashion_mnist or cifar10.")
@click.option("--preset", default="paper", show_default=True, help="Whose models and training to take.")
@click.option("--models", multiple=True, help="Comma-separated model names (default: the preset's).")
@click.option("--n-samples", type=click.IntRange(1), default=200, show_default=True, help="Test images (seeded).")
@click.option(
    "--eps", type=click.FloatRange(0, 1), default=0.3, show_default=True, help="L-inf radius (pixels in [0, 1])."
)
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--reports-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
def inside(dataset, preset, models, n_samples, eps, seed, reports_dir, progress) -> None:
    """Per-layer relative change and rank change under PGD, against noise (vu2018 Figures 1-4)."""
    from bench.analyses.run import inside as run

    click.echo(f"wrote {run(dataset, preset, split(models), n_samples, eps, seed, reports_dir, progress)}")


EPILOG_PICTURES = """\b
Examples:
  bench pictures --dataset mnist
  bench pictures --dataset mnist --models O:SOFTMAX:CE,R:TANH:MSE --search-samples 500

Writes reports/<dataset>/pictures.md and plots/pictures_*.png: per model, targeted PGD at the
smallest eps that puts every image of the search sample on its target (saito2019 Figure 1's
measure), targeted MIM at eps 0.1 (Figure 2) and the codeword CW-L2 at c = 0.1 (Figure 3).
"""


@click.command(epilog=EPILOG_PICTURES)
@click.option("--dataset", required=True, help="mnist, fashion_mnist or cifar10.")
@click.option("--preset", default="paper", show_default=True, help="Whose models and training to take.")
@click.option("--models", multiple=True, help="Comma-separated model names (default: the preset's).")
@click.option(
    "--search-samples",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Test images for the smallest-eps search (seeded).",
)
@click.option("--show", type=click.IntRange(1, 20), default=8, show_default=True, help="Images per picture.")
@click.option(
    "--cw-iterations",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Codeword CW iterations per c (Table 2: 1000).",
)
@click.option(
    "--cw-searches",
    type=click.IntRange(1),
    default=5,
    show_default=True,
    help="Codeword CW binary-search steps (Table 2: 5).",
)
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--reports-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
def pictures(dataset, preset, models, search_samples, show, cw_iterations, cw_searches, seed, reports_dir, progress):
    """Pictures of adversarial examples and the smallest eps of a targeted PGD (saito2019 Figures 1-3)."""
    from bench.analyses.run import pictures as run

    if show > search_samples:
        raise click.BadParameter(f"--show {show} is more than --search-samples {search_samples}.")
    args = (search_samples, show, cw_iterations, cw_searches, seed, reports_dir, progress)
    click.echo(f"wrote {run(dataset, preset, split(models), *args)}")


@click.command(name="benchmarks-report")
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    default=Path("reports/benchmarks.json"),
    show_default=True,
    help="What `pytest benchmarks --benchmark-only --benchmark-json=FILE` saved.",
)
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports/benchmarks.md"), show_default=True)
def benchmarks_report(json_path, out) -> None:
    """Write reports/benchmarks.md from the benchmark suite's JSON (loss_gradient and one batch per attack)."""
    from bench.reports.benchmarks import write_benchmarks_report

    _check_benchmarks_json(json_path)
    click.echo(f"wrote {write_benchmarks_report(json_path, out)}")


def _check_benchmarks_json(path: Path) -> None:
    """The fields the report reads, so a malformed file is named in one line instead of a traceback (the report
    itself only checks the two top-level keys)."""
    import json

    from bench.errors import ConfigError

    if not path.is_file():
        return  # the report names a missing file, and how to make it
    expected = "expected the file that `pytest benchmarks --benchmark-only --benchmark-json=FILE` writes"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--json {path} is not valid JSON ({exc}); {expected}.") from None
    runs = data.get("benchmarks") if isinstance(data, dict) else None
    if not isinstance(runs, list) or not isinstance(data.get("machine_info"), dict):
        raise ConfigError(f"--json {path} has no machine_info object and benchmarks list; {expected}.")
    for i, run in enumerate(runs):
        stats = run.get("stats") if isinstance(run, dict) else None
        numbers = isinstance(stats, dict) and all(
            isinstance(stats.get(k), (int, float)) and stats[k] > 0 for k in ("median", "min", "max", "rounds")
        )
        if not numbers or not isinstance(run.get("name"), str):
            raise ConfigError(
                f"--json {path}: benchmark {i} has no name or no positive stats median, min, max, rounds; {expected}."
            )


EPILOG_COMPARE = """\b
Examples:
  bench compare-art --dataset mnist
  bench compare-art --dataset mnist --n-samples 500 --cw-samples 50 --cw-iterations 1000

Writes reports/<dataset>/compare_art.md: our O:SOFTMAX:CE estimator against ART's PyTorchClassifier
with CrossEntropyLoss on the same network (predictions, gradients, FGSM and PGD results), our cw_l2
and cw_l2_codeword against ART's CarliniL2Method, and ART's NumPy and PyTorch paths of PGD.
"""


@click.command(name="compare-art", epilog=EPILOG_COMPARE)
@click.option("--dataset", required=True, help="mnist, fashion_mnist or cifar10.")
@click.option("--preset", default="paper", show_default=True, help="Whose training to take for the model.")
@click.option("--n-samples", type=click.IntRange(1), default=200, show_default=True, help="Test images (seeded).")
@click.option("--cw-samples", type=click.IntRange(0), default=20, show_default=True, help="Images for CW (0: skip).")
@click.option("--cw-iterations", type=click.IntRange(1), default=100, show_default=True, help="CW iterations per c.")
@click.option("--cw-searches", type=click.IntRange(1), default=5, show_default=True, help="CW binary-search steps.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--reports-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
def compare_art(dataset, preset, n_samples, cw_samples, cw_iterations, cw_searches, seed, reports_dir, progress):
    """Our estimator and attacks beside ART's stock ones, on the same model, images and seed."""
    from bench.analyses.run import compare_art as run

    args = (n_samples, cw_samples, cw_iterations, cw_searches, seed, reports_dir, progress)
    click.echo(f"wrote {run(dataset, preset, *args)}")
