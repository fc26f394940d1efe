"""`bench ls`: what is registered, built-in or plugin."""

from __future__ import annotations

import click
from tabulate import tabulate

EPILOG_LS = """\b
Examples:
  bench ls                      # everything
  bench ls attacks              # norm, targeted, gradient, knows the model, where it comes from
  bench --plugin my_loss.py ls models

Each row says where it comes from: built-in, or the plugin (distribution or file) that registered it.
"""


LS_CATEGORIES = ["models", "losses", "attacks", "presets", "settings", "datasets"]


@click.command(name="ls", epilog=EPILOG_LS)
@click.argument("category", required=False, type=click.Choice(LS_CATEGORIES))
def list_registered(category) -> None:
    """List the registered models, losses, attacks, presets, threat settings and datasets."""
    from bench.listing import rows

    for name in [category] if category else LS_CATEGORIES:
        if not category:
            click.echo(f"\n{name}:")
        click.echo(tabulate(rows(name), headers="keys"))
