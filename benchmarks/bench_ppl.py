"""Benchmark our perceptual path length (`stylegan_metrics.ppl`, stylegan_metrics/metrics/ppl.py) against torch-fidelity's PPL
(`calculate_metrics(ppl=True)`) and torchmetrics' `PerceptualPathLength`, on the CPU.

All tools get the same generator (`stylegan_core.Generator(z_dim=64, w_dim=64, img_resolution=64, mapping_layers=4,
channel_base=2048, channel_max=64)` after `torch.manual_seed(0)`), the same number N of pairs, the same epsilon and,
where the tool honours it, the same batch size. Each tool runs in its own fresh subprocess (this script with
`--worker NAME`): its wall time runs from the start of work (after the imports and the generator, which are the
same for all; the import time is shown apart) to the final value, so building LPIPS is inside it; its peak RSS
(VmHWM, bench_fid.peak_rss_mib) is its own.

Same LPIPS-VGG16 weights for all
--------------------------------
The real pretrained VGG16 cannot be downloaded here, so this script writes a torchvision-format VGG16 file with
seeded random convolutions (`stylegan_metrics.testing.write_vgg16_weights`, seed 0) and a private $TORCH_HOME for the
workers, whose `hub/checkpoints` holds
  * `vgg16-397923af.pth`: that file, under the name torchvision's `VGG16_Weights.IMAGENET1K_V1` downloads to.
    torch.hub's `load_state_dict_from_url` loads a cached file without checking its hash (the hash is checked
    only on download), so both peers' `torchvision.models.vgg16(weights=IMAGENET1K_V1)` get our trunk unpatched;
  * `weights-vgg16-lpips.pth`: torch-fidelity's LPIPS file (URL_VGG16_LPIPS). Its format is a state dict
    `lin{0..4}.model.1.weight` (the 1x1 heads after a dropout), a re-upload of the lpips package's v0.1
    `vgg.pth`; this script copies `lpips/weights/v0.1/vgg.pth` there verbatim.
Ours gets the VGG16 file by `weights=PATH` (our LPIPS takes its heads from the lpips package's v0.1 `vgg.pth`).
torchmetrics takes its heads from its own `functional/image/lpips_models/vgg.pth`; the parent checks that those
tensors equal lpips' v0.1 ones. Every worker turns torch.hub downloads into errors, and after timing the peers'
LPIPS modules are compared tensor by tensor with both files (the `weights` column). Ours reports the SHA-256
of the VGG16 file it loaded.

Nearest equivalent settings (and what cannot be matched)
--------------------------------------------------------
  * interpolation in Z by slerp: ours slerps between normalized z0, z1 (StyleGAN1); the peers' `slerp_unit`
    slerps the raw z0, z1 and normalizes the result. With `--latents shared` (default) the peers get our exact
    z0, z1 tables (per-index, `stylegan_metrics.engine.sampling.latents`, streams 10 and 11), unit-normalized, for which
    `slerp_unit` equals our slerp; the generator's mapping starts with PixelNorm, so the scale of z does not
    change the images. torch-fidelity receives them by a patched `torch_fidelity.metric_ppl.sample_random`
    (first call z0, second z1), torchmetrics by the wrapper's `sample(num)` (same). `--latents native`
    lets each tool draw its own latents (torch-fidelity: np.random.RandomState(seed); torchmetrics: torch.randn).
  * t: both peers only measure the pair (z0, slerp(z0, z1, epsilon)), that is t = 0, which is our
    sampling='end'; so ours runs sampling='end' by default (`--sampling`). Our sampling='full' (t ~ U[0, 1),
    the StyleGAN1 paper's definition) has no peer equivalent; worker `ours-full` (a default row) times it, its
    value is not comparable with the others.
  * allocator: ours raises glibc's mmap/trim thresholds (`stylegan_core.allocator`); worker `ours-no-mallopt`
    runs ours with glibc's defaults, as the peers run, to show how much of the difference that setting makes.
  * noise: the peers call the generator with the two endpoints of a batch concatenated ([e0; e1]); their
    wrapper hands both halves the same per-pair noise seeds, drawn from our per-index noise table in call order,
    which is what ours does. (A StyleGAN wrapper without this would give the endpoints different noise and a
    PPL dominated by noise.)
  * image range: ours feeds the float images in [-1, 1] straight to LPIPS. The peers' wrapper returns
    (x + 1) * 127.5 as float32, unclamped and unquantized: torchmetrics maps it back by 2 * x / 255 - 1;
    torch-fidelity gets ppl_sample_similarity_dtype='float32' (its default 'uint8' requires quantized images).
  * crop: off for all (the peers have none); resize: none for all (ours only box-downsamples above 256 px; the
    peers' resize=64 default would be an identity here, so ppl_sample_similarity_resize=None / resize=None).
  * trimming: ours and torch-fidelity discard below the 1st (lower) and above the 99th (higher) percentile.
    torchmetrics discards with torch.quantile(0.01, 'lower') and torch.quantile(0.99, 'lower'), so its upper
    cut differs by one order statistic; the column "our trim" applies our rule to each tool's raw distances.
  * LPIPS internals: feature normalization eps (lpips / torch-fidelity: x / (|x| + 1e-10); torchmetrics:
    x / sqrt(|x|^2 + 1e-8)); ours runs both images of a pair through VGG in one batch, the peers in two calls.
  * batch size: torchmetrics 1.9's `PerceptualPathLength.compute()` does not forward its `batch_size` to the
    functional code, which then uses its default 64 (the `batch` column shows what ran).
  * numpy >= 2.4 removed np.percentile's `interpolation=` keyword, which torch-fidelity 0.4.0's PPL passes
    (TypeError); its worker gives `torch_fidelity.metric_ppl` a numpy namespace whose percentile maps it to
    `method=` (same rule), so the discarding is torch-fidelity's own code.
  * std: not compared (torchmetrics' is unbiased, torch-fidelity's biased; ours reports no std).
Values are therefore not bit-identical: per-pair differences come from float32 rounding in different op orders,
amplified by 1 / epsilon^2. The "rel. diff" column is the median and max over pairs of |d_tool - d_ours| / d_ours
(only with --latents shared and ours with sampling='end').

Run (from the repository root):
    python benchmarks/bench_ppl.py                          # N=500 pairs, batch 32, 4 workers (~3-4 min, 2 cores)
    python benchmarks/bench_ppl.py --num 2000               # ~4x longer (~5 pairs/s per tool on 2 cores)
    python benchmarks/bench_ppl.py --num 100                # quick
    python benchmarks/bench_ppl.py --repeat 2               # two interleaved rounds, the fastest of each shown
    python benchmarks/bench_ppl.py --workers ours,torch-fidelity    # a subset
    python benchmarks/bench_ppl.py --worker ours --profile  # one worker, with a cProfile summary on stderr
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_fid  # noqa: E402  (peak_rss_mib)
from measure import forbid_downloads, machine_busy_seconds, own_cpu_seconds  # noqa: E402
from ppl_peers import (VGG_FILE, prepare_weights, run_ours, run_torch_fidelity, run_torchmetrics,  # noqa: E402
                       weights_match)

WORKERS = ("ours", "ours-full", "ours-no-mallopt", "torch-fidelity", "torchmetrics")
DEFAULT_WORKERS = "ours,ours-full,ours-no-mallopt,torch-fidelity,torchmetrics"
GENERATOR_CONFIG = dict(z_dim=64, w_dim=64, img_resolution=64, mapping_layers=4, channel_base=2048, channel_max=64)


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


# ----------------------------------------------------------------------------------------------------------------
# worker side


def make_generator():
    import torch

    import stylegan_core

    torch.manual_seed(0)
    return stylegan_core.Generator(**GENERATOR_CONFIG).eval()


def worker(args) -> None:
    import numpy as np
    import torch

    forbid_downloads()
    if args.worker == "ours-no-mallopt":  # glibc's default allocator thresholds, as the peers run with
        os.environ["STYLEGAN_METRICS_MALLOPT"] = "0"
    if args.threads:
        torch.set_num_threads(args.threads)
    import stylegan_metrics  # noqa: F401  the imports every tool needs, before the clock starts
    if args.worker == "torch-fidelity":
        import torch_fidelity  # noqa: F401
    elif args.worker == "torchmetrics":
        import torchmetrics.image  # noqa: F401
    G = make_generator()
    busy0, own0 = machine_busy_seconds(), own_cpu_seconds()
    t_work = time.perf_counter()
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    if args.worker.startswith("ours"):
        out = run_ours(args, G, "full" if args.worker == "ours-full" else args.sampling)
    elif args.worker == "torch-fidelity":
        out = run_torch_fidelity(args, G)
    else:
        out = run_torchmetrics(args, G)
    wall = time.perf_counter() - t_work
    busy1, own1 = machine_busy_seconds(), own_cpu_seconds()
    others = "-" if busy0 is None else f"{max(busy1 - busy0 - (own1 - own0), 0) / (wall * os.cpu_count()):.0%}"
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(20)
    if "lpips" in out:
        vgg = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints" / VGG_FILE
        out["weights"] = weights_match(out.pop("lpips"), vgg)
    raw_path = Path(args.out_dir) / f"{args.worker}.npy"
    np.save(raw_path, np.asarray(out.pop("raw"), dtype=np.float64))
    out.update(wall=wall, others=others, imports=t_work - T_START, raw_path=str(raw_path),
               rss_mib=bench_fid.peak_rss_mib(), threads=torch.get_num_threads())
    print("RESULT " + json.dumps(out))


# ----------------------------------------------------------------------------------------------------------------
# parent side


def run_worker(name: str, args, torch_home: Path, out_dir: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--num", str(args.num),
           "--batch", str(args.batch), "--epsilon", repr(args.epsilon), "--seed", str(args.seed),
           "--sampling", args.sampling, "--latents", args.latents, "--out-dir", str(out_dir)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = dict(os.environ, TORCH_HOME=str(torch_home), STYLEGAN_METRICS_OFFLINE="1",
               STYLEGAN_METRICS_HOME=str(out_dir / "sm_home"))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"worker {name} failed (exit {proc.returncode})")
    result = json.loads(lines[-1][len("RESULT "):])
    result["process"] = time.perf_counter() - t0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=500, help="pairs N (default 500)")
    parser.add_argument("--batch", type=int, default=32, help="pairs per batch (default 32)")
    parser.add_argument("--epsilon", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sampling", choices=["end", "full"], default="end",
                        help="ours' sampling for worker 'ours' (default end: t = 0, as both peers)")
    parser.add_argument("--latents", choices=["shared", "native"], default="shared",
                        help="shared: the peers get our z0, z1 tables (default); native: each tool draws its own")
    parser.add_argument("--workers", default=DEFAULT_WORKERS, help=f"comma-separated, of {', '.join(WORKERS)}")
    parser.add_argument("--repeat", type=int, default=1, help="interleaved rounds per tool; the table shows the "
                        "fastest (default 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in the workers")
    parser.add_argument("--work-dir", default=None, help="keep the weights and raw distances here (default: temp)")
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help="cProfile summary of the worker's work on stderr")
    args = parser.parse_args()

    if args.worker:
        by_hand = args.out_dir is None
        if by_hand:  # run by hand: prepare the weights in a temporary folder, removed afterwards
            args.out_dir = tempfile.mkdtemp(prefix="bench_ppl_")
            os.environ["TORCH_HOME"] = str(prepare_weights(Path(args.out_dir)))
            os.environ["STYLEGAN_METRICS_OFFLINE"] = "1"
        try:
            worker(args)
        finally:
            if by_hand:
                shutil.rmtree(args.out_dir, ignore_errors=True)
        return

    import numpy as np
    import torch

    from stylegan_metrics.formulas.paths import trimmed_mean

    names = [w.strip() for w in args.workers.split(",") if w.strip()]
    unknown = [w for w in names if w not in WORKERS]
    if unknown:
        raise SystemExit(f"unknown worker(s) {unknown}; choose from {', '.join(WORKERS)}")
    print(f"command: python {shlex.join(sys.argv)}")
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, os.cpu_count()={os.cpu_count()}, "
          f"torch {torch.__version__} (threads {args.threads or torch.get_num_threads()}), "
          f"torchvision {version('torchvision')}, python {platform.python_version()}, numpy {np.__version__}")
    print(f"tools: stylegan-metrics {version('stylegan-metrics')}, torch-fidelity {version('torch-fidelity')}, "
          f"torchmetrics {version('torchmetrics')}, lpips {version('lpips')}")
    print(f"generator: stylegan_core.Generator({', '.join(f'{k}={v}' for k, v in GENERATOR_CONFIG.items())}), "
          f"torch.manual_seed(0); N={args.num} pairs, batch {args.batch}, epsilon {args.epsilon:g}, seed {args.seed}, "
          f"latents {args.latents}, CPU")

    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="bench_ppl_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        torch_home = prepare_weights(work)
        runs = {name: [] for name in names}
        for round_ in range(args.repeat):  # interleaved rounds, so that a burst of load does not hit one tool only
            for name in names:
                print(f"running {name} (round {round_ + 1}/{args.repeat}) ...", file=sys.stderr, flush=True)
                r = run_worker(name, args, torch_home, work)
                r["distances"] = np.load(r["raw_path"])
                runs[name].append(r)
        results = {name: min(rs, key=lambda r: r["wall"]) for name, rs in runs.items()}
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)

    ref = results.get("ours")
    comparable = ref is not None and args.latents == "shared" and args.sampling == "end"
    print()
    print("| tool | settings | batch | wall s | pairs/s | imports s | other jobs' CPU | peak RSS MiB | "
          "PPL (tool's own) | our trim of its raw | rel. diff per pair vs ours (median / max) | weights |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        d = r["distances"]
        diff = "-"
        if comparable and not name.startswith("ours") and d.shape == ref["distances"].shape:
            rel = np.abs(d - ref["distances"]) / np.abs(ref["distances"])
            diff = f"{np.median(rel):.1e} / {rel.max():.1e}"
        label = f"{name} {version('stylegan-metrics') if name.startswith('ours') else version(name)}"
        walls = " (runs: " + ", ".join(f"{x['wall']:.1f}" for x in runs[name]) + ")" if args.repeat > 1 else ""
        print(f"| {label} | {r['settings']} | {r['batch']} | {r['wall']:.1f}{walls} | {args.num / r['wall']:.1f} | "
              f"{r['imports']:.1f} | {r['others']} | {r['rss_mib']:.0f} | {r['value']:.6g} | "
              f"{trimmed_mean(d):.6g} | {diff} | {r['weights']} |")
    print()
    print("wall s: from the start of work in a fresh process (generator built, imports done) to the value, LPIPS "
          "construction included (the best of --repeat interleaved runs); pairs/s = N / wall s (each pair: 2 generated "
          "images, 2 VGG16 passes); other jobs' CPU: the CPU time other "
          "processes used during the worker's work, as a share of all cores (from /proc/stat; above ~10% the "
          "timing is contended: such a run was seen 2-3x slower); peak RSS: the worker's VmHWM. "
          "Timings are indicative.")
    if comparable:
        print("Same z0, z1 (unit-normalized), t = 0, same noise and same LPIPS weights for all: values differ only by "
              "float32 rounding in different op orders (amplified by 1/epsilon^2) and by torchmetrics' upper-cut rule.")
    else:
        print("Values are not expected to agree pair by pair (different latents or t); compare them only loosely.")


if __name__ == "__main__":
    main()
