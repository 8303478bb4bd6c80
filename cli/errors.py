"""Bad input becomes one readable line on stderr and exit status 2."""

from __future__ import annotations

import click

from stylegan_core.errors import InputError


class CLIError(click.ClickException):
    exit_code = 2


class Application(click.Group):
    """A click group that reports `InputError` (bad files, data, options) as one line, exit 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as e:
            raise CLIError(str(e)) from None
