"""Bad input becomes one readable line on stderr and exit status 2."""

from __future__ import annotations

import os

import click

from stylegan_core.errors import InputError


class CLIError(click.ClickException):
    exit_code = 2


class Application(click.Group):
    """A click group that reports `InputError` (bad files, data, options) as one line, exit 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["argv"] = list(args)  # what `--gpus N` starts its worker processes with
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as e:
            rank = int(os.environ.get("RANK", "0"))
            raise CLIError(f"[rank {rank}] {e}" if rank else str(e)) from None  # a bad image may be one rank's
