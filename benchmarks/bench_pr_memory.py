"""Peak memory of precision/recall (`stylegan_metrics.formulas.precision_recall.precision_recall_from_arrays`) on
random float32 features: the memory beyond the two feature matrices stays a few distance blocks, whatever N.

Each measurement runs in its own fresh process (this script with --worker), which draws N real and N generated
float32 features of --dim dimensions (seeded normal values; real and generated from slightly different means),
records its resident memory (VmRSS) with the features in place, then computes precision and recall with k=3, and
records its peak (VmHWM, `bench_fid.peak_rss_mib`). "Beyond features" = peak - resident before the call.

Methods:
- blocked: ours, distances in row x column blocks of --block (default NVIDIA's 10,000; at most a few blocks of
  block^2 float32 in memory, e.g. 400 MB at 10,000).
- naive: the whole N x N distance matrices with one torch.cdist each (real-real for the radii, then generated-real
  for precision; generated-generated and real-generated for recall), which is what any implementation without
  blocks holds: 4 N^2 bytes per matrix (10 GB at N = 50,000).
Both give the same numbers (checked when both run at one N).

Run (from the repository root; 4096-d costs 2 N^2 D flops per distance matrix, so N=20,000 is ~3 TFLOP each):
    python benchmarks/bench_pr_memory.py                                   # N 5k, 10k, 20k; blocks 10k and 2.5k; naive
    python benchmarks/bench_pr_memory.py --num 2000 4000 --dim 512        # quick
    python benchmarks/bench_pr_memory.py --num 50000 --skip-naive --device cuda   # the full size, on a GPU
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fid import peak_rss_mib  # noqa: E402

K = 3  # neighbourhood size (NVIDIA's pr50k3)


def rss_mib() -> float:
    """This process's resident memory now (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def features(num: int, dim: int, seed: int, shift: float):
    """[num, dim] float32, normal around `shift`."""
    import numpy as np

    return (np.random.default_rng(seed).standard_normal((num, dim), dtype=np.float32) + np.float32(shift))


def naive_precision_recall(real, gen, k: int, device) -> tuple[float, float]:
    """Whole-matrix k-NN precision and recall: one torch.cdist per pair of sets, no blocks."""
    import torch

    real, gen = torch.from_numpy(real).to(device), torch.from_numpy(gen).to(device)

    def coverage(manifold, probes):
        radii = torch.cdist(manifold, manifold).kthvalue(k + 1, dim=1).values  # [N]: k-th neighbour, self excluded
        return float((torch.cdist(probes, manifold) <= radii).any(dim=1).double().mean())

    with torch.inference_mode():
        torch.backends.cuda.matmul.allow_tf32 = False
        return coverage(real, gen), coverage(gen, real)


def worker(args) -> dict:
    import torch

    from stylegan_metrics.formulas.precision_recall import precision_recall_from_arrays

    if args.threads:
        torch.set_num_threads(args.threads)
    [num] = args.num
    real = features(num, args.dim, seed=0, shift=0.0)
    gen = features(num, args.dim, seed=1, shift=0.05)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = rss_mib()
    t0 = time.perf_counter()
    if args.worker == "blocked":
        precision, recall = precision_recall_from_arrays(real, gen, k=K, row_batch_size=args.block,
                                                         col_batch_size=args.block, device=device)
    else:
        precision, recall = naive_precision_recall(real, gen, K, device)
    seconds = time.perf_counter() - t0
    peak = peak_rss_mib()
    gpu_peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return dict(features_mib=(real.nbytes + gen.nbytes) / 2**20, before_mib=before, peak_mib=peak,
                beyond_mib=peak - before, gpu_peak_mib=gpu_peak, seconds=seconds, precision=precision, recall=recall)


def run_worker(method: str, num: int, block: int, args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", method, "--num", str(num), "--dim", str(args.dim),
           "--block", str(block), "--device", args.device, "--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"failed": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def load_average() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, nargs="+", default=[5000, 10000, 20000], help="features per side")
    parser.add_argument("--dim", type=int, default=4096, help="feature width (VGG16 fc2: 4096)")
    parser.add_argument("--blocks", type=int, nargs="+", default=[10000, 2500], help="block sizes of ours")
    parser.add_argument("--skip-naive", action="store_true", help="no whole-matrix runs")
    parser.add_argument("--naive-max", type=int, default=20000, help="largest N of the whole-matrix runs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per worker (0: torch's default)")
    parser.add_argument("--worker", choices=["blocked", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--block", type=int, default=10000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    import torch

    print(f"# precision/recall memory, k={K}, {args.dim}-d float32 features, device {args.device}; "
          f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, load average before {load_average()}\n")
    print("| method | block | N = M | features MiB | peak RSS MiB | beyond features MiB | one distance matrix MiB "
          "| GPU peak MiB | s | precision | recall |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    runs = [("blocked", block, num) for block in args.blocks for num in args.num]
    if not args.skip_naive:
        runs += [("naive", 0, num) for num in args.num if num <= args.naive_max]
    values: dict[int, set] = {}
    for method, block, num in runs:
        r = run_worker(method, num, block or num, args)
        if "failed" in r:
            print(f"| {method} | {block or '-'} | {num:,} | - | - | - | - | - | - | failed: {r['failed']} | |")
            continue
        side = min(block, num) if block else num
        matrix = side * side * 4 / 2**20  # one float32 block (ours) or the whole N x N matrix (naive)
        values.setdefault(num, set()).add((round(r["precision"], 12), round(r["recall"], 12)))
        gpu = f"{r['gpu_peak_mib']:.0f}" if r["gpu_peak_mib"] is not None else "-"
        print(f"| {'ours, blocked' if block else 'naive torch.cdist'} | {f'{block:,}' if block else 'whole'} "
              f"| {num:,} | {r['features_mib']:.0f} | {r['peak_mib']:.0f} | {r['beyond_mib']:.0f} "
              f"| {matrix:.0f} | {gpu} | {r['seconds']:.1f} | {r['precision']:.4f} | {r['recall']:.4f} |", flush=True)
    agree = all(len(v) == 1 for v in values.values())
    print(f"\nevery method gave the same precision and recall at each N: {agree}; load average after {load_average()}")


if __name__ == "__main__":
    main()
