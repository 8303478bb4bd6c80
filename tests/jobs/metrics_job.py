"""A metrics run for the distributed and resume tests: FID, PPL and LS of a tiny generator with small
deterministic networks; run alone, under torchrun, or killed part way. Rank 0 writes results.json."""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import tiny_generator  # noqa: E402

from stylegan_core import distributed  # noqa: E402
from stylegan_metrics import fid, linear_separability, ppl  # noqa: E402
from stylegan_metrics.stats import ReferenceStats  # noqa: E402


class ColourFeatures(torch.nn.Module):
    """uint8 images -> channel means and 2x2 quadrant means (15-d); optionally slow, to be killed mid-run."""

    def __init__(self, delay: float = 0.0):
        super().__init__()
        self.delay = delay

    def forward(self, x):
        time.sleep(self.delay)
        x = x.float() / 255
        return torch.cat([x.mean(dim=(2, 3)), torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)], dim=1)


class ColourClassifier(torch.nn.Module):
    """Three 'attributes' read off the image: colour channel means plus a corner pixel (noisy in z)."""

    attributes = ["Red", "Green", "Blue"]

    def forward(self, x):
        return x.mean(dim=(2, 3)) * 8 + x[:, :, 0, 0] * 4


def squared_l2(a, b):
    return (a - b).square().mean(dim=(1, 2, 3))


def reference() -> ReferenceStats:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 15))
    return ReferenceStats(mu=x.mean(0), sigma=np.cov(x, rowvar=False), n=100, features="ColourFeatures")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--metrics", default="fid,ppl,ls")
    parser.add_argument("--num", type=int, default=48)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--state-dir", default=None)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--rank0-only", action="store_true", help="join the group, then evaluate on rank 0 alone")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.rank0_only:
        distributed.init_from_env(torch.device("cpu"))
        if distributed.is_main():
            evaluate(args, distributed=False)
        distributed.barrier()
    else:
        evaluate(args)


def evaluate(args, **options) -> None:
    G = tiny_generator(16)
    state = lambda name: str(Path(args.state_dir) / name) if args.state_dir else None  # noqa: E731
    out = {}
    if "fid" in args.metrics:
        r = fid(G, reference(), num_gen=args.num, batch_size=5, seed=args.seed, features=ColourFeatures(args.delay),
                device="cpu", progress=False, chunk_size=args.chunk, state_dir=state("fid"), **options)
        out["fid"] = r.value
    if "ppl" in args.metrics:
        r = ppl(G, space="both", sampling="full", num_samples=args.num, batch_size=5, seed=args.seed,
                similarity=squared_l2, device="cpu", progress=False, chunk_size=args.chunk, crop=False,
                state_dir=state("ppl"), **options)
        out["ppl"] = r.results
        out["ppl_distances"] = r.details["distance"].tolist()
    if "ls" in args.metrics:
        r = linear_separability(G, ColourClassifier(), num_samples=4 * args.num, attributes=3, batch_size=5,
                                seed=args.seed, device="cpu", progress=False, chunk_size=args.chunk,
                                state_dir=state("ls"), **options)
        out["ls"] = r.results
    if distributed.is_main():
        Path(args.out).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
