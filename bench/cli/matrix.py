"""`bench matrix` and `bench report`: run a preset's cells, write a dataset's report."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.common import RegistryEpilog, check_device, fail_on_failed_cells, split
from bench.cli.dask_options import DASK_HELP, dask_options, dask_settings

EPILOG_MATRIX = """
\b
Examples:
  bench matrix --dataset mnist                       # the papers' whole evaluation (preset "paper")
  bench matrix --dataset mnist --preset quick        # the same cells, fewer images and iterations
  bench matrix --dataset mnist --dry-run             # the plan and its estimated cost, nothing run
  bench matrix --dataset mnist --attacks pgd,fgsm --models O:SOFTMAX:CE,R:TANH:MSE
  bench matrix --dataset mnist --n-samples cw_l2=200,pgd=2000
  bench matrix --dataset mnist --settings transfer --transfer-matrix
  bench matrix --dataset mnist --preset quick --training-seeds 0,1,2   # models O:SOFTMAX:CE@s0, @s1, @s2, ...

\b
Threat settings: whitebox_untargeted (accuracy), whitebox_targeted (success rate, one random
target per image from the seed), transfer (crafted on O:SOFTMAX:CE, or every pair with
--transfer-matrix), tailored (targeted cw_l2 against cw_l2_codeword).
{attacks}
Finished cells are skipped on a rerun; an interrupted run resumes where it stopped.
""" + DASK_HELP.replace("{", "{{").replace("}", "}}")


def _attack_lines() -> str:
    """The registered attacks, the papers' and the harness's apart (`bench ls attacks` says more)."""
    from bench.attacks import ATTACKS

    def names(knows: bool) -> str:
        return ", ".join(n for n, f in ATTACKS.items() if f.knows_model == knows)

    return f"Attacks: {names(False)};\nand the attacks that know the model: {names(True)}."


def _parse_samples(text: str | None) -> dict[str, int]:
    """'500' (every attack) or 'cw_l2=50,pgd=1000'."""
    from bench.attacks import ATTACKS
    from bench.errors import ConfigError

    if text is None:
        return {}
    out: dict[str, int] = {}
    for part in text.split(","):
        if not part.strip():
            raise ConfigError(f"--n-samples {text!r}: expected N or attack=N pairs, e.g. 500 or cw_l2=50,pgd=1000.")
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


def _parse_seeds(text: str | None) -> tuple[int, ...] | None:
    """'0,1,2': each model trained once per seed, named <label>@s<seed> (models/seeds.py); checked by the plan."""
    from bench.errors import ConfigError

    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(
            f"--training-seeds {text!r}: expected distinct whole numbers >= 0 separated by commas, e.g. 0,1,2."
        ) from None


@click.command(cls=RegistryEpilog, epilog_from=lambda: EPILOG_MATRIX.format(attacks=_attack_lines()))
@click.option("--dataset", required=True, help="mnist, fashion_mnist or cifar10.")
@click.option("--preset", default="paper", show_default=True, help="paper, quick, or a path to a preset TOML file.")
@click.option("--models", multiple=True, help="Comma-separated model names (default: the preset's).")
@click.option("--attacks", multiple=True, help="Comma-separated attack names (default: all of the preset's).")
@click.option("--settings", multiple=True, help="Comma-separated threat settings (default: all).")
@click.option("--n-samples", default=None, help="Images per cell: N, or attack=N pairs (default: the preset's).")
@click.option(
    "--seed", type=click.IntRange(0), default=None, help="Seeds the images, targets and random starts (preset: 0)."
)
@click.option(
    "--training-seeds",
    default=None,
    help="Train each model once per seed, e.g. 0,1,2: models named <label>@s<seed> (preset: training_seeds).",
)
@click.option(
    "--shard-images",
    type=click.IntRange(0),
    default=None,
    help="Craft cells of more images in shards of N, each seeded from the cell and its first image, so that "
    "workers share a large cell; the shard size is part of the cell (preset: shard_images; 0: never).",
)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda[:N].")
@click.option("--transfer-matrix", is_flag=True, help="Transfer between every source and target model.")
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True, help="Attack batch size.")
@click.option("--dry-run", is_flag=True, help="Print the plan and its estimated cost; run nothing.")
@click.option(
    "--passes-from",
    type=click.Path(path_type=Path),
    multiple=True,
    help="With --dry-run: price each craft by the passes per image this results store (a folder or its "
    ".sqlite; repeatable) measured for the same model, attack and parameters, instead of the family's upper bound "
    "(e.g. reports/mnist/store for the paper preset). The run's own store is always read.",
)
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
@dask_options
def matrix(
    dataset,
    preset,
    models,
    attacks,
    settings,
    n_samples,
    seed,
    training_seeds,
    shard_images,
    device,
    transfer_matrix,
    batch_size,
    dry_run,
    passes_from,
    out,
    reports_dir,
    data_dir,
    codebook_key,
    progress,
    **executor,
) -> None:
    """Run every model x attack x threat setting of a preset and write the dataset's report."""
    from bench.matrix.execute import describe_plan, execute
    from bench.matrix.plan import MatrixOptions, make_plan
    from bench.paths import results_dir
    from bench.reports.dataset import write_report

    check_device(device)
    if passes_from and not dry_run:
        raise click.UsageError("--passes-from prices the --dry-run estimate; give it with --dry-run.")
    options = MatrixOptions(
        dataset=dataset,
        preset=preset,
        models=split(models),
        attacks=split(attacks),
        settings=split(settings),
        n_samples=_parse_samples(n_samples),
        seed=seed,
        training_seeds=_parse_seeds(training_seeds),
        shard_images=shard_images,
        device=device,
        transfer_matrix=transfer_matrix,
        batch_size=batch_size,
        data_dir=data_dir,
        codebook_key=codebook_key,
        progress=progress,
        dask=dask_settings(**executor),
    )
    plan = make_plan(options)
    _check_store(results_dir(out))
    click.echo(describe_plan(plan, options, estimate=dry_run, out=out, passes_from=passes_from))
    if dry_run:
        _echo_slurm_script(options.dask)
        return
    summary, _ = execute(plan, options, out)
    click.echo(_summary_text(summary, write_report(plan.dataset, results_dir(out), reports_dir, out)))
    fail_on_failed_cells(summary.failed, summary.done + len(summary.failed))


def _echo_slurm_script(dask) -> None:
    """Under --cluster slurm, the job script each SLURM job would run (what a dry run shows of it)."""
    if dask and dask.cluster == "slurm":
        from bench.matrix.cluster import slurm_job_script

        click.echo(f"the job script of each of the {dask.jobs} SLURM jobs:\n" + slurm_job_script(dask))


@click.command()
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
@click.option(
    "--beside",
    type=click.Path(path_type=Path, exists=True),
    multiple=True,
    help="Another results store whose models the report shows next to this one's, on the same images (repeat for "
    "more). A model whose name is taken is named by its training recipe: O:SOFTMAX:CE+fgsm_rs_at.",
)
def report(dataset, out, reports_dir, reprice, beside) -> None:
    """Write reports/<dataset>/ from the results store alone.

    \b
    bench report --dataset mnist                                   # reports/mnist/ from BENCH_HOME/results
    bench report --dataset mnist --out reports/vu2018/mnist/store --reports-dir reports/vu2018 \\
        --beside reports/vu2018_fast/mnist/store                   # PGD- and FGSM-RS-trained models side by side
    """
    from bench.data.datasets import DATASETS
    from bench.paths import results_dir
    from bench.reports.dataset import write_report

    dataset = DATASETS.canonical(dataset)
    if reprice:
        from bench.matrix.execute import reprice as reprice_store
        from bench.matrix.execute import results_store

        click.echo(f"repriced {reprice_store(dataset, results_store(out))} cells at their attack's batch size")
    _check_has_cells(dataset, results_dir(out))
    for other in beside:
        _check_has_cells(dataset, other)
    path = write_report(dataset, results_dir(out), reports_dir, out, beside)
    click.echo(f"wrote {path}")


def _check_store(folder: Path) -> None:
    """A damaged results store (or --out naming a file) is refused before the plan is described or run, not
    after its cells; read without writing, so a dry run leaves it as it was."""
    from bench.errors import StoreError
    from bench.results.store import read_records

    if folder.exists() and not folder.is_dir():
        raise StoreError(f"--out {folder} is a file; expected a results folder (it holds results.sqlite).")
    if (folder / "results.sqlite").exists():
        read_records(folder)


def _check_has_cells(dataset: str, results: Path) -> None:
    """A report of no cells would look like a finished one: refused, naming the store and what it holds."""
    from bench.errors import StoreError
    from bench.results.store import read_records

    if not read_records(results, dataset=dataset):
        held = sorted({r.dataset for r in read_records(results)})
        raise StoreError(
            f"results store {results} holds no cells of dataset {dataset!r} (it holds: {', '.join(held) or 'none'}); "
            f"run `bench matrix --dataset {dataset} --out {results}` first."
        )


def _summary_text(summary, report: Path) -> str:
    """One line for the run (a bench.matrix.runner.RunSummary), and every failed cell on stderr."""
    lines = [
        f"{summary.done} cells run, {summary.skipped} already finished, {len(summary.failed)} failed; report: {report}"
    ]
    if summary.diagnostics:
        lines[0] += f" (and {summary.diagnostics} gradient-health cells)"
    if summary.groups_elsewhere:  # another run on the same --out shared the work (bench.results.leases)
        lines[0] += f"; {summary.groups_elsewhere} craft groups left to another run on this store"
    for name, error in summary.failed:
        lines.append(f"  FAILED {name}: {error}")
    if summary.failed:
        click.echo("\n".join(lines), err=True)
    return lines[0]
