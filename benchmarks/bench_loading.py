"""Does decoding reference images in DataLoader worker processes speed up reference statistics here?

Times `compute_reference_stats` (Inception-v3, seeded random-valued weights in torch-fidelity's format) on a folder
of M PNGs of side R written by this script, once per worker count, each in a fresh subprocess (cache off). The
images are coloured discs with added noise, so PNG decoding costs what it costs for photographs of that size.
`default_workers` in stylegan_metrics/fid.py follows this measurement.

Run (from the repository root):
    python benchmarks/bench_loading.py                        # M=256 images of 256 px, workers 0 1 2
    python benchmarks/bench_loading.py --size 1024 --num 64   # decoding-heavy
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fid import ROOT, peak_rss_mib  # noqa: E402

sys.path.insert(0, str(ROOT))


def write_noisy_discs(folder: Path, num: int, size: int, seed: int = 0) -> None:
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(num):
        img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 256, 3)))
        r = rng.uniform(size / 8, size / 3)
        cx, cy = rng.uniform(r, size - r, 2)
        ImageDraw.Draw(img).ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        noisy = np.asarray(img, np.int16) + rng.integers(-12, 13, (size, size, 3))
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(folder / f"{i:06d}.png")


def worker(args) -> None:
    from stylegan_metrics import compute_reference_stats

    stats = compute_reference_stats(args.data, weights=args.weights, batch_size=args.batch, device="cpu",
                                    progress=False, cache=False, workers=args.workers)
    print(json.dumps({"wall_s": time.perf_counter() - T_START, "peak_rss_mib": peak_rss_mib(),
                      "trace": float(stats.sigma.trace())}))


def decode_seconds(folder: Path) -> float:
    from stylegan_core.data.datasets import ImageDataset

    dataset = ImageDataset(folder, strict=True)
    t0 = time.perf_counter()
    for i in range(len(dataset)):
        dataset[i]
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=256, help="images M (default 256)")
    parser.add_argument("--size", type=int, default=256, help="image side R in pixels (default 256)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers-list", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    import torch
    from stylegan_metrics.testing import write_inception_v3_weights

    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.machine()}, os.cpu_count()={os.cpu_count()}, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.2f}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-loading-") as tmp:
        tmp = Path(tmp)
        data, weights = tmp / "data", tmp / "inception.pth"
        write_noisy_discs(data, args.num, args.size)
        write_inception_v3_weights(weights, seed=0)
        decode = decode_seconds(data)
        for workers in args.workers_list:
            cmd = [sys.executable, __file__, "--worker", "--data", str(data), "--weights", str(weights),
                   "--batch", str(args.batch), "--workers", str(workers)]
            env = dict(os.environ, STYLEGAN_METRICS_HOME=str(tmp / "home"), STYLEGAN_METRICS_OFFLINE="1")
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"worker failed:\n{proc.stderr[-3000:]}")
            rows.append((workers, json.loads(proc.stdout.strip().splitlines()[-1])))
            print(f"  workers={workers}: {rows[-1][1]['wall_s']:.1f} s", file=sys.stderr, flush=True)
    base = rows[0][1]["wall_s"]
    print(f"\nsetup: M={args.num} PNGs of {args.size} px ({decode:.2f} s to decode them all in one process), "
          f"batch {args.batch}, Inception-v3 on the CPU\n")
    print("| workers | wall s | images/s | speed vs 0 workers | peak RSS MiB (main process) | trace(sigma) |")
    print("|---|---|---|---|---|---|")
    for workers, r in rows:
        print(f"| {workers} | {r['wall_s']:.1f} | {args.num / r['wall_s']:.2f} | {base / r['wall_s']:.2f}x | "
              f"{r['peak_rss_mib']:.0f} | {r['trace']:.6g} |")


if __name__ == "__main__":
    main()
