"""`bench evaluate`: a network of your own (a factory plus a safetensors file) in a preset's cells."""

from __future__ import annotations

from pathlib import Path

import click

EPILOG_EVALUATE = """
\b
Examples:
  bench evaluate --dataset mnist --factory mypkg.nets:small_cnn --weights small.safetensors
  bench evaluate --dataset mnist --factory mypkg.nets:small_cnn --weights small.safetensors \\
      --name small --loss hinge --preset paper --models O:SOFTMAX:CE --out runs/small

\b
The factory (package.module:function, importable from here) builds the untrained network; its weights
come from the safetensors file (a checkpoint stays data: nothing is unpickled). The network must map
images (N, C, H, W) in [0, 1] to one score per class, whose argmax is its decision. --loss is what the
attacks that use the model's own loss ascend (default cross_entropy on the scores). The cells, results
store, report, flags and worst case are the zoo's; --models adds zoo models to the same run. From Python:
bench.evaluate(module, "mnist", preset="quick").
"""


@click.command(epilog=EPILOG_EVALUATE)
@click.option("--dataset", required=True, help="mnist, fashion_mnist or cifar10.")
@click.option("--factory", required=True, help="package.module:function that builds the network.")
@click.option("--weights", type=click.Path(path_type=Path), required=True, help="Its weights: a .safetensors file.")
@click.option("--name", default="mine", show_default=True, help="The model's label in results and reports.")
@click.option("--loss", default=None, help="Built-in loss the loss attacks ascend (default cross_entropy).")
@click.option("--preset", default="quick", show_default=True, help="paper, quick, or a preset TOML path.")
@click.option("--models", default=None, help="Comma-separated zoo models to run beside it.")
@click.option("--attacks", default=None, help="Comma-separated attack names (default: the preset's).")
@click.option(
    "--seed", type=click.IntRange(0), default=None, help="Seeds the images, targets and random starts (preset: 0)."
)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda[:N].")
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True, help="Attack batch size.")
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Results folder (default BENCH_HOME/results)."
)
@click.option("--reports-dir", type=click.Path(path_type=Path), default=None, help="Also write the report here.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def evaluate(dataset, factory, weights, name, loss, preset, models, attacks, seed, device, batch_size, out,
             reports_dir, progress) -> None:  # fmt: skip
    """Evaluate your own trained network in a preset's cells, as the zoo is: no training."""
    from bench.api import evaluate as evaluate_module
    from bench.cli.common import fail_on_failed_cells, split
    from models.external import from_factory

    module, origin = from_factory(factory, weights)
    run = evaluate_module(
        module,
        dataset,
        preset,
        name=name,
        loss=loss,
        out=out,
        reports_dir=reports_dir,
        models=split((models,)) if models else None,
        attacks=split((attacks,)) if attacks else None,
        seed=seed,
        device=device,
        batch_size=batch_size,
        progress=progress,
    )
    s = run.summary
    click.echo(f"{name} ({origin}): {s.done} cells run, {s.skipped} already finished, {len(s.failed)} failed")
    click.echo(f"results: {run.results_path}" + (f"; report: {run.report}" if run.report else ""))
    for cell, error in s.failed:
        click.echo(f"  FAILED {cell}: {error}", err=True)
    fail_on_failed_cells(s.failed, s.done + len(s.failed))
