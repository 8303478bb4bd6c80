"""A metrics run for the distributed and resume tests: FID, KID, PPL and LS by their registry names on a tiny
generator with small deterministic networks, in one `evaluate` call; run alone, under torchrun, or killed part way.
Rank 0 writes results.json."""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import tiny_generator  # noqa: E402

from stylegan_core import ranks  # noqa: E402
from stylegan_metrics import evaluate  # noqa: E402
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


class NoiseImages(torch.utils.data.Dataset):
    """40 reference images made in code (image i from seed i), named by their fingerprint."""

    def __len__(self):
        return 40

    def __getitem__(self, i):
        return torch.randint(0, 256, (3, 16, 16), generator=torch.Generator().manual_seed(i), dtype=torch.uint8)

    def fingerprint(self):
        return {"noise_images": 40}


def reference() -> ReferenceStats:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 15))
    return ReferenceStats(mu=x.mean(0), sigma=np.cov(x, rowvar=False), n=100, features="ColourFeatures")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--metrics", default="fid,ppl,ls", help="families; with kid, images are the reference")
    parser.add_argument("--num", type=int, default=48)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--state-dir", default=None)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--rank0-only", action="store_true", help="join the group, then evaluate on rank 0 alone")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.rank0_only:
        ranks.init_from_env(torch.device("cpu"))
        if ranks.is_main():
            run(args, distributed=False)
        ranks.barrier()
    else:
        run(args)


def run(args, **options) -> None:
    G = tiny_generator(16)
    names = {"fid": [f"fid{args.num}_full"], "ppl": [f"ppl{args.num}_zfull", f"ppl{args.num}_wfull"],
             "ls": [f"ls{4 * args.num}"], "kid": [f"kid{args.num}_full"]}
    wanted = [name for family in args.metrics.split(",") for name in names[family]]
    data = NoiseImages() if "kid" in args.metrics else reference()
    results = evaluate(G, wanted, data=data, features=ColourFeatures(args.delay), similarity=squared_l2,
                       classifier=ColourClassifier(), attributes=3, batch_size=5, seed=args.seed, device="cpu",
                       progress=False, chunk_size=args.chunk, state_dir=args.state_dir, **options)
    out = {}
    for r in results:
        if r.metric.startswith(("fid", "kid")):
            out[r.metric[:3]] = r.value
        elif r.metric.startswith("ppl"):
            out.setdefault("ppl", {}).update(r.results)
            out.setdefault("ppl_distances", []).extend(r.details["distance"].tolist())
        else:
            out["ls"] = {key.split("_")[-1]: value for key, value in r.results.items()}
    if ranks.is_main():
        Path(args.out).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
