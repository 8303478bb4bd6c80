"""Entry point: the click group and its commands."""

from __future__ import annotations

import click

from .convert import convert
from .demo import demo
from .errors import Application
from .evaluate import evaluate
from .fid import fid, stats
from .generate import generate
from .ls import ls, train_classifier
from .ppl import ppl
from .report import report
from .toyfaces import toyfaces
from .train import train


@click.group(cls=Application, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="stylegan-metrics")
def main() -> None:
    """Evaluate and train style-based generators: FID, PPL and linear separability by NVIDIA's metric names."""


main.add_command(train)
main.add_command(generate)
main.add_command(evaluate)
main.add_command(fid)
main.add_command(stats)
main.add_command(ppl)
main.add_command(ls)
main.add_command(train_classifier)
main.add_command(convert)
main.add_command(toyfaces)
main.add_command(demo)
main.add_command(report)
