"""Bad input becomes one readable line on stderr and exit status 2."""

from __future__ import annotations

import os

import click

from stylegan_core.errors import InputError


class CLIError(click.ClickException):
    exit_code = 2


class Application(click.Group):
    """A click group that reports `InputError` (bad files, data, options) and file-system errors (a full or
    read-only disk, a folder where a file goes) as one line, exit 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args[:1] == ["--"]:  # `torchrun ... -m stylegan_metrics_cli -- fid ...` (some Pythons pass the -- on)
            args = args[1:]
        ctx.meta["argv"] = list(args)  # what `--gpus N` starts its worker processes with
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (InputError, OSError) as e:
            rank = int(os.environ.get("RANK", "0"))
            raise CLIError(f"[rank {rank}] {e}" if rank else str(e)) from None  # a bad image may be one rank's
