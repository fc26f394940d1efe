"""Helpers shared by the commands: the one-line error, devices, comma-separated lists."""

from __future__ import annotations

import click

from bench.errors import BenchError


class UserError(click.ClickException):
    """A BenchError shown as one line, exit status 2, no traceback."""

    exit_code = 2


def one_line_errors(invoke, ctx: click.Context):
    """Run a command's ``invoke``, turning a BenchError into a UserError (one line, exit status 2)."""
    try:
        return invoke(ctx)
    except BenchError as exc:
        raise UserError(str(exc)) from exc


class RegistryEpilog(click.Command):
    """A command whose epilog lists what the registries hold, built only when help is shown: `bench --help` and
    every command's start stay free of torch and ART imports until a command needs them."""

    def __init__(self, *args, epilog_from=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.epilog_from = epilog_from

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.epilog_from is not None and self.epilog is None:
            self.epilog = self.epilog_from()
        super().format_epilog(ctx, formatter)


class BenchCommand(click.Command):
    """A command that shows a BenchError as one line even when invoked on its own (outside ``bench.cli.main``)."""

    def invoke(self, ctx: click.Context):
        return one_line_errors(super().invoke, ctx)


def check_device(device: str) -> None:
    import torch

    from bench.errors import ConfigError

    if device == "cpu":
        return
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for, but torch sees no CUDA device here; use --device cpu.")
        return
    raise ConfigError(f"device {device!r} is not cpu or cuda[:N].")


def split(values: tuple[str, ...]) -> tuple[str, ...] | None:
    items = tuple(v.strip() for value in values for v in value.split(",") if v.strip())
    return items or None


def parse_params(pairs: tuple[str, ...]) -> dict[str, float]:
    """``("gamma=3", "s=10")`` as numbers; a pair that is not NAME=NUMBER is named."""
    from bench.errors import ConfigError

    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--param {pair!r}: expected NAME=NUMBER, e.g. gamma=3.") from None
        if not sep or not name.strip():
            raise ConfigError(f"--param {pair!r}: expected NAME=NUMBER, e.g. gamma=3.")
    return out
