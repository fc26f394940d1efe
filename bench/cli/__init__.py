"""The ``bench`` command line.

Every option is validated into frozen specs before any work starts; errors name the bad value
and the valid choices, and exit with status 2 without a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
from tabulate import tabulate

from bench.errors import BenchError

EPILOG_TRAIN = """
\b
Examples:
  bench train --dataset mnist --model R:TANH:MSE --arch cnn
  bench train --dataset mnist --model all
  bench train --dataset mnist --model lmcl_s10_m0.3 --pgd-at --epochs 10
  bench train --dataset fashion_mnist --model O:SOFTMAX:CE --model O:SOFTMAX:MSE

{models}
"""


def _model_lines() -> str:
    """The built-in model kinds with their aliases, from the registry (plugins: `bench ls models`)."""
    from models.kinds import KINDS, built_in_kinds

    lines = ["\b", "Models (the papers' names; lower_snake aliases in brackets; `bench ls models` for plugins):"]
    for name in built_in_kinds():
        kind = KINDS.get(name)
        aliases = f" [{', '.join(kind.aliases)}]" if kind.aliases else ""
        lines.append(f"  {name:<14} {kind.description}{aliases}")
    lines.append("  all            every built-in kind above")
    return "\n".join(lines)


EPILOG_TRAIN = EPILOG_TRAIN.format(models=_model_lines())


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


class UserError(click.ClickException):
    """A BenchError shown as one line, exit status 2, no traceback."""

    exit_code = 2


class BenchGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BenchError as exc:
            raise UserError(str(exc)) from exc


@click.group(cls=BenchGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="PATH|MODULE[:ATTR]",
    help="Load model kinds, losses, attacks or presets from a .py file or module (repeatable; "
    "also BENCH_PLUGINS). Installed entry points (bench.models, bench.losses, bench.attacks, bench.presets) "
    "load always.",
)
@click.version_option(package_name="bench")
def main(verbose: int, plugins: tuple[str, ...]) -> None:
    """A harness for how training loss and target representation change adversarial robustness.

    It trains the model zoo of saito2019 (O:SOFTMAX:CE, O:SOFTMAX:MSE, R:TANH:MSE) and vu2018
    (hinge, LMCL, PGD adversarial training), hands each model to ART as an estimator whose
    gradients come from the model's own loss, and keeps trained models in a store keyed by
    their configuration (BENCH_HOME, default ~/.cache/bench).

    Your own models, losses, attacks and presets plug in without editing the package: see `bench ls`
    and `--plugin`.
    """
    from bench.plugins import load_plugins

    _setup_logging(verbose)
    try:
        load_plugins(plugins)
    except BenchError as exc:
        raise UserError(str(exc)) from exc


@main.command(epilog=EPILOG_TRAIN)
@click.option("--dataset", required=True, help="mnist, fashion_mnist or cifar10.")
@click.option("--model", "models", multiple=True, required=True, help="Model name, repeatable, or 'all'.")
@click.option("--arch", default="cnn", show_default=True, help="cnn (vu2018 Table I) or densenet (DenseNet-BC).")
@click.option("--epochs", type=int, default=6, show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam's learning rate (cosine decay to 0).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the initialisation and batch order.")
@click.option("--n-train", type=int, default=None, help="Train on a seeded subset of this many images (quick runs).")
@click.option("--pgd-at", is_flag=True, help="PGD adversarial training (Madry et al.) as in vu2018.")
@click.option("--pgd-eps", type=float, default=0.3, show_default=True, help="L-inf radius of the training attack.")
@click.option("--pgd-step", type=float, default=0.01, show_default=True, help="Step size of the training attack.")
@click.option("--pgd-iter", type=int, default=40, show_default=True, help="Steps of the training attack (vu2018: 40).")
@click.option("--codeword-length", type=int, default=128, show_default=True, help="d for R:TANH:MSE.")
@click.option(
    "--codebook-key",
    envvar="BENCH_CODEBOOK_KEY",
    default=None,
    help="Secret key of the R:TANH:MSE codebook (or BENCH_CODEBOOK_KEY); a public default otherwise.",
)
@click.option("--lmcl-s", type=float, default=10.0, show_default=True, help="LMCL scale s.")
@click.option("--lmcl-m", type=float, default=0.3, show_default=True, help="LMCL margin m.")
@click.option("--depth", type=int, default=22, show_default=True, help="DenseNet-BC depth (6n + 4).")
@click.option("--growth", type=int, default=12, show_default=True, help="DenseNet growth rate k.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda[:N].")
@click.option(
    "--data-dir",
    envvar="BENCH_DATA_DIR",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder with the dataset files (or BENCH_DATA_DIR).",
)
@click.option("--force", is_flag=True, help="Retrain even if the store has the model.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars.")
def train(
    dataset,
    models,
    arch,
    epochs,
    batch_size,
    lr,
    seed,
    n_train,
    pgd_at,
    pgd_eps,
    pgd_step,
    pgd_iter,
    codeword_length,
    codebook_key,
    lmcl_s,
    lmcl_m,
    depth,
    growth,
    device,
    data_dir,
    force,
    progress,
) -> None:
    """Train models (or take them from the store) and print their clean test accuracy."""
    from models.kinds import built_in_kinds
    from models.spec import AdversarialTraining, TrainConfig, make_spec
    from models.store import ModelStore
    from models.zoo import obtain

    names = built_in_kinds() if any(m.lower() == "all" for m in models) else list(models)
    adversarial = AdversarialTraining(pgd_eps, pgd_step, pgd_iter) if pgd_at else None
    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, adversarial=adversarial, n_train=n_train
    )
    specs = [
        make_spec(
            dataset,
            name,
            arch,
            config,
            codeword_length=codeword_length,
            codebook_key=codebook_key,
            lmcl_s=lmcl_s,
            lmcl_m=lmcl_m,
            densenet_depth=depth,
            densenet_growth=growth,
        )
        for name in names
    ]
    _check_device(device)
    store = ModelStore()
    rows = []
    for spec in specs:
        stored = obtain(
            spec, store, data_dir=data_dir, device=device, codebook_key=codebook_key, progress=progress, force=force
        )
        m = stored.meta
        rows.append(
            [spec.name, f"{100 * m['clean_accuracy']:.2f}%", m["n_test"], f"{m['train_seconds']:.0f}", m["key"]]
        )
    click.echo(tabulate(rows, headers=["model", "clean accuracy", "test images", "train s", "store key"]))


@main.command(name="models")
@click.option("--dataset", default=None, help="Only this dataset.")
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the markdown report (e.g. reports/models.md) instead of printing a table.",
)
def list_models(dataset, report) -> None:
    """List the models in the store, or write reports/models.md from it."""
    from bench.data.datasets import DATASETS
    from bench.reports.models import model_rows, write_models_report
    from models.store import ModelStore

    metas = ModelStore().list()
    if dataset:
        wanted = DATASETS.canonical(dataset)
        metas = [m for m in metas if m["spec"]["dataset"] == wanted]
    if report:
        click.echo(f"wrote {write_models_report(metas, report)} ({len(metas)} models)")
        return
    rows = model_rows(metas)
    click.echo(tabulate(rows, headers="keys") if rows else "the store is empty; train with `bench train`")


def _check_device(device: str) -> None:
    import torch

    from bench.errors import ConfigError

    if device == "cpu":
        return
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for, but torch sees no CUDA device here; use --device cpu.")
        return
    raise ConfigError(f"device {device!r} is not cpu or cuda[:N].")


EPILOG_MATRIX = """
\b
Examples:
  bench matrix --dataset mnist                       # the papers' whole evaluation (preset "paper")
  bench matrix --dataset mnist --preset quick        # the same cells, fewer images and iterations
  bench matrix --dataset mnist --dry-run             # the plan and its estimated cost, nothing run
  bench matrix --dataset mnist --attacks pgd,fgsm --models O:SOFTMAX:CE,R:TANH:MSE
  bench matrix --dataset mnist --n-samples cw_l2=200,pgd=2000
  bench matrix --dataset mnist --settings transfer --transfer-matrix

\b
Threat settings: whitebox_untargeted (accuracy), whitebox_targeted (success rate, one random
target per image from the seed), transfer (crafted on O:SOFTMAX:CE, or every pair with
--transfer-matrix), tailored (targeted cw_l2 against cw_l2_codeword).
{attacks}
Finished cells are skipped on a rerun; an interrupted run resumes where it stopped.
"""


def _attack_lines() -> str:
    """The registered attacks, the papers' and the harness's apart (`bench ls attacks` says more)."""
    from bench.attacks import ATTACKS

    def names(knows: bool) -> str:
        return ", ".join(n for n, f in ATTACKS.items() if f.knows_model == knows)

    return f"Attacks: {names(False)};\nand the attacks that know the model: {names(True)}."


EPILOG_MATRIX = EPILOG_MATRIX.format(attacks=_attack_lines())


def _split(values: tuple[str, ...]) -> tuple[str, ...] | None:
    items = tuple(v.strip() for value in values for v in value.split(",") if v.strip())
    return items or None


def _preset_models(dataset: str, preset: str, models: tuple[str, ...], progress: bool):
    """(canonical dataset, model names, stored models) of a preset, training what the store lacks."""
    from bench.data.datasets import DATASETS
    from bench.matrix.plan import load_preset
    from models.spec import make_spec
    from models.zoo import obtain

    dataset = DATASETS.canonical(dataset)
    chosen = load_preset(preset)
    names = _split(models) or chosen.models
    specs = [make_spec(dataset, name, chosen.arch, chosen.train_config()) for name in names]
    return dataset, names, [obtain(spec, progress=progress) for spec in specs]


def _parse_samples(text: str | None) -> dict[str, int]:
    """'500' (every attack) or 'cw_l2=50,pgd=1000'."""
    from bench.attacks import ATTACKS
    from bench.errors import ConfigError

    if not text:
        return {}
    out: dict[str, int] = {}
    for part in text.split(","):
        name, sep, number = part.partition("=")
        if not sep:
            name, number = "*", name
        try:
            n = int(number)
        except ValueError:
            raise ConfigError(f"--n-samples {part!r}: expected N or attack=N with N a whole number.") from None
        if n < 1:
            raise ConfigError(f"--n-samples {part!r}: the number of images must be at least 1.")
        for attack in ATTACKS.names() if name == "*" else [ATTACKS.canonical(name.strip())]:
            out[attack] = n
    return out


@main.command(epilog=EPILOG_MATRIX)
@click.option("--dataset", required=True, help="mnist, fashion_mnist or cifar10.")
@click.option("--preset", default="paper", show_default=True, help="paper, quick, or a path to a preset TOML file.")
@click.option("--models", multiple=True, help="Comma-separated model names (default: the preset's).")
@click.option("--attacks", multiple=True, help="Comma-separated attack names (default: all of the preset's).")
@click.option("--settings", multiple=True, help="Comma-separated threat settings (default: all).")
@click.option("--n-samples", default=None, help="Images per cell: N, or attack=N pairs (default: the preset's).")
@click.option("--seed", type=int, default=None, help="Seeds the images, targets and random starts (preset: 0).")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda[:N].")
@click.option("--transfer-matrix", is_flag=True, help="Transfer between every source and target model.")
@click.option("--batch-size", type=int, default=128, show_default=True, help="Attack batch size.")
@click.option("--dry-run", is_flag=True, help="Print the plan and its estimated cost; run nothing.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Results folder (SQLite store and adversarial cache); default BENCH_HOME/results.",
)
@click.option("--reports-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@click.option("--data-dir", envvar="BENCH_DATA_DIR", type=click.Path(path_type=Path), default=None)
@click.option("--codebook-key", envvar="BENCH_CODEBOOK_KEY", default=None, help="Secret key of R:TANH:MSE's codebook.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def matrix(
    dataset,
    preset,
    models,
    attacks,
    settings,
    n_samples,
    seed,
    device,
    transfer_matrix,
    batch_size,
    dry_run,
    out,
    reports_dir,
    data_dir,
    codebook_key,
    progress,
) -> None:
    """Run every model x attack x threat setting of a preset and write the dataset's report."""
    from bench.matrix.execute import describe_plan, run_matrix
    from bench.matrix.runner import MatrixOptions, make_plan

    _check_device(device)
    options = MatrixOptions(
        dataset=dataset,
        preset=preset,
        models=_split(models),
        attacks=_split(attacks),
        settings=_split(settings),
        n_samples=_parse_samples(n_samples),
        seed=seed,
        device=device,
        transfer_matrix=transfer_matrix,
        batch_size=batch_size,
        data_dir=data_dir,
        codebook_key=codebook_key,
        progress=progress,
    )
    plan = make_plan(options)
    click.echo(describe_plan(plan, options, estimate=dry_run))
    if dry_run:
        return
    summary = run_matrix(plan, options, out, reports_dir)
    click.echo(summary)


@main.command()
@click.option("--dataset", required=True)
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Results folder (default BENCH_HOME/results)."
)
@click.option("--reports-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@click.option(
    "--reprice",
    is_flag=True,
    help="Re-measure each cell's pass price on this machine at the batch size its attack ran with "
    "(stores written before passes were priced that way); needs the models in the store.",
)
def report(dataset, out, reports_dir, reprice) -> None:
    """Write reports/<dataset>/ from the results store alone."""
    from bench.data.datasets import DATASETS
    from bench.matrix.execute import write_report
    from bench.paths import bench_home

    dataset = DATASETS.canonical(dataset)
    if reprice:
        from bench.matrix.execute import reprice as reprice_store
        from bench.matrix.execute import results_store

        click.echo(f"repriced {reprice_store(dataset, results_store(out))} cells at their attack's batch size")
    path = write_report(dataset, out or bench_home() / "results", reports_dir, out)
    click.echo(f"wrote {path}")


def _gate_options(dataset, preset, seed, device, progress):
    from bench.data.datasets import DATASETS
    from bench.matrix.runner import MatrixOptions

    _check_device(device)
    return MatrixOptions(
        dataset=DATASETS.canonical(dataset), preset=preset, seed=seed, device=device, progress=progress
    )


def _gate_flags(command):
    for option in reversed(
        [
            click.option("--dataset", required=True, help="mnist, fashion_mnist or cifar10."),
            click.option("--preset", default="quick", show_default=True, help="The preset whose cells are compared."),
            click.option("--seed", type=int, default=None, help="Seed (preset: 0)."),
            click.option("--device", default="cpu", show_default=True),
            click.option(
                "--results",
                type=click.Path(path_type=Path, file_okay=False),
                default=None,
                help="Read this results folder (with results.sqlite) instead of running the preset.",
            ),
            click.option(
                "--run-dir",
                type=click.Path(path_type=Path, file_okay=False),
                default=None,
                help="Where to run the preset (default BENCH_HOME/gate/<dataset>-<preset>); finished cells are kept.",
            ),
            click.option("--progress/--no-progress", default=True, show_default=True),
        ]
    ):
        command = option(command)
    return command


EPILOG_CHECK = """\b
Examples:
  bench check --dataset mnist --baseline reports/baselines/mnist-quick.json
  bench check --dataset mnist --baseline base.json --results runs/today --tolerance 0.02

A cell drifts when its Wilson 95% interval and the baseline's do not overlap (two independent samples);
--tolerance widens both by a fixed amount. A cell missing on either side, errored, or run with another
configuration fails the gate too. Exit status: 0 all cells agree, 1 the gate failed, 2 bad input.
"""


@main.command(epilog=EPILOG_CHECK)
@_gate_flags
@click.option("--baseline", type=click.Path(path_type=Path), required=True, help="The baseline JSON to compare with.")
@click.option("--tolerance", type=float, default=0.0, show_default=True, help="Added to the intervals' gap.")
@click.option("--strict", is_flag=True, help="Cells that are not in the baseline fail too.")
def check(dataset, preset, seed, device, results, run_dir, progress, baseline, tolerance, strict) -> None:
    """Compare a run of a preset (by default run now) with a committed baseline; fail on drift."""
    from bench.matrix.gate_run import plan_records
    from bench.results.gate import compare, read_baseline

    base = read_baseline(baseline)  # a malformed baseline is refused before any work
    options = _gate_options(dataset, preset, seed, device, progress)
    outcome = compare(
        base, plan_records(options, results or run_dir, run=results is None), tolerance=tolerance, strict=strict
    )
    click.echo(outcome.markdown())
    if outcome.failed:
        raise SystemExit(1)


@main.command(name="baseline")
@_gate_flags
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write it (default reports/baselines/<dataset>-<preset>.json).",
)
def write_baseline_command(dataset, preset, seed, device, results, run_dir, progress, out) -> None:
    """Write a new baseline on purpose: run the preset (or read --results) and store every cell's rate."""
    from bench.matrix.gate_run import plan_records
    from bench.results.gate import make_baseline, write_baseline

    options = _gate_options(dataset, preset, seed, device, progress)
    baseline = make_baseline(plan_records(options, results or run_dir, run=results is None), options.dataset, preset)
    path = out or Path("reports") / "baselines" / f"{options.dataset}-{Path(preset).stem}.json"
    write_baseline(path, baseline)
    click.echo(f"wrote {path}: {len(baseline['cells'])} cells, {len(baseline['errors'])} errored")


EPILOG_LIPSCHITZ = """\b
Examples:
  bench lipschitz --dataset mnist
  bench lipschitz --dataset fashion_mnist --models O:SOFTMAX:CE,O:SOFTMAX:MSE

Writes reports/<dataset>/lipschitz.md (a table per model, the product bound) and
plots/lipschitz_conv.png (Figure 4: each conv layer's bound, model against model).
Models come from the store and are trained first where missing.
"""


@main.command(epilog=EPILOG_LIPSCHITZ)
@click.option("--dataset", required=True, help="mnist, fashion_mnist or cifar10.")
@click.option("--preset", default="paper", show_default=True, help="Whose models and training to take.")
@click.option("--models", multiple=True, help="Comma-separated model names (default: the preset's).")
@click.option("--reports-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
def lipschitz(dataset, preset, models, reports_dir, progress) -> None:
    """Per-layer Lipschitz upper bounds of every model (FFT method, checked by power iteration)."""
    from bench.analyses.lipschitz_report import write_lipschitz_report

    dataset, names, stored = _preset_models(dataset, preset, models, progress)
    command = f"bench lipschitz --dataset {dataset}" + (f" --models {','.join(names)}" if models else "")
    path = write_lipschitz_report(dataset, stored, reports_dir / dataset, command)
    click.echo(f"wrote {path}")


EPILOG_INSIDE = """\b
Examples:
  bench inside --dataset mnist
  bench inside --dataset mnist --models O:SOFTMAX:CE,lmcl --n-samples 500

Writes reports/<dataset>/inside.md with plots/inside_relative_change.png and
plots/inside_rank_change_pgd.png: per-layer relative change under PGD against
uniform noise of the same eps, and the rank of the clean prediction under PGD.
"""


@main.command(epilog=EPILOG_INSIDE)
@click.option("--dataset", required=True, help="mnist, fashion_mnist or cifar10.")
@click.option("--preset", default="paper", show_default=True, help="Whose models and training to take.")
@click.option("--models", multiple=True, help="Comma-separated model names (default: the preset's).")
@click.option("--n-samples", type=click.IntRange(1), default=200, show_default=True, help="Test images (seeded).")
@click.option(
    "--eps", type=click.FloatRange(0, 1), default=0.3, show_default=True, help="L-inf radius (pixels in [0, 1])."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--reports-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
def inside(dataset, preset, models, n_samples, eps, seed, reports_dir, progress) -> None:
    """Per-layer relative change and rank change under PGD, against noise (vu2018 Figures 1-4)."""
    from tqdm.auto import tqdm

    from bench.analyses.inside_report import PGD_PARAMS, analyse_model, write_inside_report
    from bench.data import datasets
    from bench.matrix.craft import sample_set

    dataset, names, stored = _preset_models(dataset, preset, models, progress)
    samples = sample_set(datasets.load(dataset, "test"), n_samples, seed)
    params = {**PGD_PARAMS, "eps": eps}
    results = [analyse_model(m, samples, seed, params, 128) for m in tqdm(stored, desc="inside", disable=not progress)]
    command = f"bench inside --dataset {dataset} --n-samples {n_samples}" + (f" --eps {eps}" if eps != 0.3 else "")
    if models:
        command += f" --models {','.join(names)}"
    click.echo(f"wrote {write_inside_report(dataset, results, n_samples, params, reports_dir / dataset, command)}")


EPILOG_PICTURES = """\b
Examples:
  bench pictures --dataset mnist
  bench pictures --dataset mnist --models O:SOFTMAX:CE,R:TANH:MSE --search-samples 500

Writes reports/<dataset>/pictures.md and plots/pictures_*.png: per model, targeted PGD at the
smallest eps that puts every image of the search sample on its target (saito2019 Figure 1's
measure), targeted MIM at eps 0.1 (Figure 2) and the codeword CW-L2 at c = 0.1 (Figure 3).
"""


@main.command(epilog=EPILOG_PICTURES)
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
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--reports-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
def pictures(dataset, preset, models, search_samples, show, cw_iterations, cw_searches, seed, reports_dir, progress):
    """Pictures of adversarial examples and the smallest eps of a targeted PGD (saito2019 Figures 1-3)."""
    from tqdm.auto import tqdm

    from bench.analyses.pictures_report import picture_model, write_pictures_report
    from bench.data import datasets
    from bench.matrix.craft import sample_set

    if show > search_samples:
        raise click.BadParameter(f"--show {show} is more than --search-samples {search_samples}.")
    dataset, names, stored = _preset_models(dataset, preset, models, progress)
    samples = sample_set(datasets.load(dataset, "test"), search_samples, seed)
    plots = reports_dir / dataset / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    cw = {"c": 0.1, "binary_search_steps": cw_searches, "max_iter": cw_iterations}
    results = [
        picture_model(m, samples, show, seed, cw, plots) for m in tqdm(stored, desc="pictures", disable=not progress)
    ]
    command = f"bench pictures --dataset {dataset} --search-samples {search_samples} --show {show} --seed {seed}"
    if (cw_iterations, cw_searches) != (1000, 5):
        command += f" --cw-iterations {cw_iterations} --cw-searches {cw_searches}"
    if models:
        command += f" --models {','.join(names)}"
    click.echo(f"wrote {write_pictures_report(dataset, results, show, reports_dir / dataset, command)}")


@main.command(name="benchmarks-report")
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

    click.echo(f"wrote {write_benchmarks_report(json_path, out)}")


EPILOG_COMPARE = """\b
Examples:
  bench compare-art --dataset mnist
  bench compare-art --dataset mnist --n-samples 500 --cw-samples 50 --cw-iterations 1000

Writes reports/<dataset>/compare_art.md: our O:SOFTMAX:CE estimator against ART's PyTorchClassifier
with CrossEntropyLoss on the same network (predictions, gradients, FGSM and PGD results), our cw_l2
and cw_l2_codeword against ART's CarliniL2Method, and ART's NumPy and PyTorch paths of PGD.
"""


@main.command(name="compare-art", epilog=EPILOG_COMPARE)
@click.option("--dataset", required=True, help="mnist, fashion_mnist or cifar10.")
@click.option("--preset", default="paper", show_default=True, help="Whose training to take for the model.")
@click.option("--n-samples", type=click.IntRange(1), default=200, show_default=True, help="Test images (seeded).")
@click.option("--cw-samples", type=click.IntRange(0), default=20, show_default=True, help="Images for CW (0: skip).")
@click.option("--cw-iterations", type=click.IntRange(1), default=100, show_default=True, help="CW iterations per c.")
@click.option("--cw-searches", type=click.IntRange(1), default=5, show_default=True, help="CW binary-search steps.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--reports-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
def compare_art(dataset, preset, n_samples, cw_samples, cw_iterations, cw_searches, seed, reports_dir, progress):
    """Our estimator and attacks beside ART's stock ones, on the same model, images and seed."""
    from bench.analyses.compare_art import compare_report
    from bench.data import datasets
    from bench.matrix.craft import sample_set
    from bench.matrix.plan import load_preset
    from models.estimator import make_estimator
    from models.spec import make_spec
    from models.zoo import obtain

    dataset = datasets.DATASETS.canonical(dataset)
    chosen = load_preset(preset)
    stored = obtain(make_spec(dataset, "O:SOFTMAX:CE", chosen.arch, chosen.train_config()), progress=progress)
    est = make_estimator(stored.spec, stored.network, tuple(stored.meta["input_shape"]), stored.meta["n_classes"])
    samples = sample_set(datasets.load(dataset, "test"), n_samples, seed)
    cw = {"c": 0.01, "binary_search_steps": cw_searches, "max_iter": cw_iterations}
    command = f"bench compare-art --dataset {dataset} --n-samples {n_samples} --cw-samples {cw_samples}"
    command += f" --cw-iterations {cw_iterations} --cw-searches {cw_searches} --seed {seed}"
    title = (
        f"# {dataset}: our parts beside ART's stock parts\n\nGenerated by `{command}`; do not edit by hand. "
        f"Model {stored.meta['name']} (store key {stored.spec.key()}); {n_samples} seeded test images "
        f"({cw_samples} for CW: c = 0.01, {cw_searches} x {cw_iterations} iterations); seed {seed}."
    )
    text = compare_report(est, samples.x.numpy(), samples.y.numpy(), seed, cw_samples, cw, title)
    path = reports_dir / dataset / "compare_art.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    click.echo(f"wrote {path}")


EPILOG_LS = """\b
Examples:
  bench ls                      # everything
  bench ls attacks              # norm, targeted, gradient, knows the model, where it comes from
  bench --plugin my_loss.py ls models

Each row says where it comes from: built-in, or the plugin (distribution or file) that registered it.
"""


LS_CATEGORIES = ["models", "losses", "attacks", "presets", "settings", "datasets"]


@main.command(name="ls", epilog=EPILOG_LS)
@click.argument("category", required=False, type=click.Choice(LS_CATEGORIES))
def list_registered(category) -> None:
    """List the registered models, losses, attacks, presets, threat settings and datasets."""
    from bench.listing import rows

    for name in [category] if category else LS_CATEGORIES:
        if not category:
            click.echo(f"\n{name}:")
        click.echo(tabulate(rows(name), headers="keys"))


def _add_commands() -> None:
    """Commands that live in their own modules."""
    from bench.cli.evaluate import evaluate
    from bench.cli.export import export

    main.add_command(export)
    main.add_command(evaluate)


_add_commands()
