"""Options shared by several commands, so each is spelled and documented once."""

from __future__ import annotations

import click

from stylegan_core import distributed
from stylegan_metrics.sampling import metric_device, resolve_device  # noqa: F401  (re-exported for the commands)


ckpt_option = click.option("--ckpt", "ckpt", required=True, type=click.Path(dir_okay=False),
                           help="Generator checkpoint: this tool's .pt, an NVIDIA .pkl or a rosinality .pt.")
batch_option = click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True, help="Batch size.")
seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
device_option = click.option("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available).")
truncation_option = click.option("--truncation", "truncation_psi", type=float, default=1.0, show_default=True,
                                 help="Truncation psi (1 = none).")
no_progress_option = click.option("--no-progress", is_flag=True, help="Hide progress bars.")
weights_option = click.option("--weights", type=click.Path(dir_okay=False), default=None,
                              help="Weights file of the feature network (default: cache or download).")
out_jsonl_option = click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
                                help="Append the result as one JSON line to this file.")
precision_option = click.option("--precision", type=click.Choice(["fp32", "tf32", "bf16"]), default="fp32",
                                show_default=True, help="Arithmetic of the feature/similarity network (fp32: "
                                "comparable numbers; tf32, bf16: faster on GPUs, see the README's deviations).")
workers_option = click.option("--workers", type=click.IntRange(min=0), default=None,
                              help="Processes decoding reference images (default: up to 8 on a GPU, 0 on the CPU).")
num_option = click.option("--num", type=click.IntRange(min=2), help="Number of generated samples.")


def emit_result(result, ckpt: str, out: str | None) -> None:
    """Tag the result with its checkpoint, append it to the JSONL file if asked, print it (rank 0 only)."""
    if not distributed.is_main():
        return
    result.snapshot_pkl = str(ckpt)
    if out:
        result.to_jsonl(out)
    click.echo(str(result))
