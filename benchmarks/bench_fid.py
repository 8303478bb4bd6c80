"""Benchmark our FID (`stylegan_metrics.fid`, stylegan_metrics/metrics/fid.py) against torch-fidelity's `calculate_metrics(fid=True)` on the CPU.

Both tools get the same small generator (z_dim=64, 32x32, seeded with torch.manual_seed(0), or --ckpt), the same
reference folder of M real 32-px images that this script writes (coloured discs on coloured backgrounds), the same
number N of generated images, the same batch size and the same Inception-v3 weights file (torch-fidelity's exact
format with seeded random values, `stylegan_metrics.testing.write_inception_v3_weights`: the real pretrained file
cannot be downloaded offline, and FID speed does not depend on the values). Each tool runs in its own fresh
subprocess (this script with --worker ours|ours-no-mallopt|torch-fidelity), so imports, model construction and the reference
statistics are inside its wall time and its peak RSS is its own; both tools' caches are off (ours: a fresh
$STYLEGAN_METRICS_HOME, STYLEGAN_METRICS_OFFLINE=1; torch-fidelity: cache=False).

It also times the Frechet distance of two 2048-d Gaussians (covariances of random 4000 x 2048 data): ours
(`stylegan_metrics.frechet_distance`, Cholesky + symmetric eigenvalues), torch-fidelity's (`np.linalg.eigvals`
of S1 S2) and pytorch-fid's (`scipy.linalg.sqrtm(S1 S2)`, run once: it takes tens of seconds).

Run (from the repository root):
    python benchmarks/bench_fid.py                           # N=500 generated, M=250 reference images (~8 min)
    python benchmarks/bench_fid.py --num 1000 --ref 500      # bigger (~15 min on 2 cores)
    python benchmarks/bench_fid.py --num 200 --ref 100       # quicker
    python benchmarks/bench_fid.py --ckpt G.pt               # a trained 32x32 generator instead
    python benchmarks/bench_fid.py --skip-frechet            # FID table only
"""

from __future__ import annotations

import time

T_START = time.perf_counter()  # a worker's wall time counts its imports too

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TOOLS = ("ours", "ours-no-mallopt", "torch-fidelity")
GENERATOR_CONFIG = dict(z_dim=64, w_dim=64, img_resolution=32, mapping_layers=4, channel_base=1024, channel_max=64)


def peak_rss_mib() -> float:
    """This process's peak RSS: VmHWM of its own address space. Not ru_maxrss (the fallback off Linux), which Linux
    carries over execve from the parent, so a worker would report at least its parent's peak (seen: 980 MiB for
    every small worker of run_all.py, the parent's own peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_seconds() -> float:
    """User + system time of this process and its reaped children (torch-fidelity's DataLoader workers)."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def make_generator(ckpt: str | None):
    import torch
    import stylegan_core

    if ckpt:
        return stylegan_core.load_generator(ckpt)
    torch.manual_seed(0)
    return stylegan_core.Generator(**GENERATOR_CONFIG).eval().requires_grad_(False)


def write_reference(folder: Path, num: int, size: int = 32, seed: int = 0) -> None:
    """`num` PNGs of a coloured disc on a coloured background, drawn 8x larger and downsampled (smooth edges)."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    scale = 8
    for i in range(num):
        background, disc = (tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(2))
        img = Image.new("RGB", (size * scale, size * scale), background)
        r = rng.uniform(size / 8, size / 3) * scale
        cx, cy = rng.uniform(r, size * scale - r, 2)
        ImageDraw.Draw(img).ellipse((cx - r, cy - r, cx + r, cy + r), fill=disc)
        img.resize((size, size), Image.LANCZOS).save(folder / f"{i:06d}.png")


def worker_ours(args) -> float:
    from stylegan_metrics import fid

    G = make_generator(args.ckpt)
    result = fid(G, args.reference, num_gen=args.num, batch_size=args.batch, seed=0, weights=args.weights,
                 device=getattr(args, "device", "cpu"), progress=False)
    return float(next(iter(result.results.values())))


def worker_torch_fidelity(args) -> float:
    import torch
    import torch_fidelity
    from stylegan_core.data.images import to_uint8

    class Uint8Output(torch.nn.Module):  # torch-fidelity's extractors take uint8 [N, 3, H, W]
        def __init__(self, G):
            super().__init__()
            self.G = G

        def forward(self, z):
            return to_uint8(self.G(z))

    cuda = getattr(args, "device", "cpu").startswith("cuda")  # run_all.py's --device; this script's CLI: CPU
    G = make_generator(args.ckpt)
    model = torch_fidelity.GenerativeModelModuleWrapper(Uint8Output(G), G.z_dim, "normal", 0, cuda=cuda)
    metrics = torch_fidelity.calculate_metrics(
        input1=model, input1_model_num_samples=args.num, input2=args.reference, fid=True, batch_size=args.batch,
        feature_extractor_weights_path=args.weights, cuda=cuda, cache=False, verbose=False, rng_seed=0)
    return float(metrics[torch_fidelity.KEY_METRIC_FID])


def run_worker(tool: str, args, reference: Path, weights: Path, home: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", tool, "--reference", str(reference),
           "--weights", str(weights), "--num", str(args.num), "--batch", str(args.batch)]
    if args.ckpt:
        cmd += ["--ckpt", args.ckpt]
    env = dict(os.environ, STYLEGAN_METRICS_HOME=str(home), STYLEGAN_METRICS_OFFLINE="1",
               TORCH_HOME=str(home / "torch"))  # no torch-fidelity cache or weights from a previous run either
    if tool == "ours-no-mallopt":
        env["STYLEGAN_METRICS_MALLOPT"] = "0"  # glibc's default allocator thresholds, as torch-fidelity runs with
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    outer = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{tool} worker failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = outer
    return result


def frechet_timings(dims: int = 2048, rows: int = 4000, seed: int = 0) -> list[tuple[str, float, float]]:
    """(method, seconds, value) for two Gaussians of random 4000 x 2048 data (different scales and means)."""
    import numpy as np
    import scipy.linalg
    from stylegan_metrics import frechet_distance

    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal((rows, dims))
    x2 = rng.standard_normal((rows, dims)) * rng.uniform(0.5, 2.0, dims) + x1[:, ::-1] * 0.3
    mu1, mu2 = x1.mean(0), x2.mean(0) + 0.1
    s1, s2 = np.cov(x1, rowvar=False), np.cov(x2, rowvar=False)

    def torch_fidelity_formula():  # torch_fidelity.metric_fid.fid_statistics_to_metric
        diff = mu1 - mu2
        tr = np.sum(np.sqrt(np.linalg.eigvals(s1.dot(s2)).astype("complex128")).real)
        return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * tr)

    def pytorch_fid_formula():  # pytorch_fid.fid_score.calculate_frechet_distance, eps-offset fallback omitted
        diff = mu1 - mu2
        covmean = scipy.linalg.sqrtm(s1.dot(s2))
        return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))

    out = []
    for name, fn in (("ours: frechet_distance (Cholesky + eigh)", lambda: frechet_distance(mu1, s1, mu2, s2)),
                     ("torch-fidelity: eigvals(S1 S2)", torch_fidelity_formula),
                     ("pytorch-fid: scipy.linalg.sqrtm(S1 S2)", pytorch_fid_formula)):
        t0 = time.perf_counter()
        value = fn()
        out.append((name, time.perf_counter() - t0, value))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=500, help="generated images N (default 500)")
    parser.add_argument("--ref", type=int, default=250, help="reference images M written by the script (default 250)")
    parser.add_argument("--batch", type=int, default=32, help="batch size of both tools (default 32)")
    parser.add_argument("--ckpt", default=None, help="a stylegan-metrics checkpoint of a 32x32 generator")
    parser.add_argument("--skip-frechet", action="store_true", help="do not time the 2048-d Frechet distance")
    parser.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        value = (worker_ours if args.worker.startswith("ours") else worker_torch_fidelity)(args)
        print(json.dumps({"tool": args.worker, "wall_s": time.perf_counter() - T_START, "fid": value,
                          "cpu_s": cpu_seconds(), "peak_rss_mib": peak_rss_mib()}))
        return

    import torch
    from stylegan_metrics.testing import write_inception_v3_weights

    sys.stdout.reconfigure(line_buffering=True)  # keep stdout and the stderr progress lines in order
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.machine()}, os.cpu_count()={os.cpu_count()}, torch {torch.__version__} "
          f"(threads {torch.get_num_threads()}), python {platform.python_version()}")
    print(f"setup: N={args.num} generated, M={args.ref} reference 32x32 PNGs, batch {args.batch}, "
          f"generator {'from ' + args.ckpt if args.ckpt else GENERATOR_CONFIG}, random-valued Inception-v3 weights")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-fid-") as tmp:
        tmp = Path(tmp)
        reference, weights = tmp / "reference", tmp / "weights" / "inception-random.pth"
        write_reference(reference, args.ref)
        write_inception_v3_weights(weights, seed=0)
        for tool in TOOLS:
            results[tool] = run_worker(tool, args, reference, weights, tmp / f"home-{tool}")
            print(f"  {tool}: {results[tool]['wall_s']:.1f} s", file=sys.stderr, flush=True)

    ours, theirs = results["ours"], results["torch-fidelity"]
    print()
    print("| tool | wall s | CPU s | images/s | peak RSS MiB | FID | speed ratio | memory ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for tool, r in results.items():
        speed = theirs["wall_s"] / r["wall_s"]
        memory = r["peak_rss_mib"] / theirs["peak_rss_mib"]
        print(f"| {tool} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {args.num / r['wall_s']:.2f} | "
              f"{r['peak_rss_mib']:.0f} | {r['fid']:.4f} | {speed:.2f}x | {memory:.2f}x |")
    print()
    notes = [
        "speed ratio = torch-fidelity wall / tool wall (>1: faster); memory ratio = tool RSS / torch-fidelity RSS.",
        "wall s: from the worker's start (imports, generator, reference statistics of the M real images, N generated "
        "images, Frechet distance); images/s = N / wall; CPU s = user + system time, reaped child processes included "
        "(less sensitive than wall time to other load on the machine).",
        f"whole processes (interpreter start included): ours {ours['process_s']:.1f} s, "
        f"torch-fidelity {theirs['process_s']:.1f} s.",
        "The FID values differ slightly, as expected: the tools draw different latents and noise for the same "
        "generator (ours: a per-index seeded table; torch-fidelity: np.random.RandomState(0), batch by batch).",
        "ours-no-mallopt: ours with glibc's default mmap/trim thresholds (STYLEGAN_METRICS_MALLOPT=0), as "
        "torch-fidelity runs; the difference to 'ours' is what stylegan_core.allocator.keep_freed_memory gives.",
        "torch-fidelity reads the reference folder with min(4, 2 x cpu_count) DataLoader worker processes, whose "
        "memory is not in its peak RSS.",
    ]
    for note in notes:
        print(f"note: {note}")

    if not args.skip_frechet:
        rows = frechet_timings()
        print()
        print("| Frechet distance, 2048-d (random 4000 x 2048 data) | time s | speed ratio vs sqrtm | value |")
        print("|---|---|---|---|")
        t_sqrtm = rows[-1][1]
        for name, seconds, value in rows:
            print(f"| {name} | {seconds:.2f} | {t_sqrtm / seconds:.1f}x | {value:.6f} |")


if __name__ == "__main__":
    main()
