"""All benchmarks in one run: FID, PPL and linear separability (LS), ours against the peers torch-fidelity,
torchmetrics and clean-fid, then how our cost grows with the sample count N.

Table 1 (peers): every tool gets the bundled toyfaces generator (a real trained 32-px StyleGAN shipped in
stylegan_metrics/assets), the same weights files and the same sample counts:
  * FID: N generated images against M reference images, toyfaces renders written by this script as a folder
    of PNGs (world 0, which the generator was trained on), batch B, the same Inception-v3 file for all
    (torch-fidelity's format, seeded random values: `stylegan_metrics.testing.write_inception_v3_weights`).
    Ours and torch-fidelity run as benchmarks/bench_fid.py runs them; torchmetrics' FrechetInceptionDistance
    gets uint8 batches (the reference PNGs read in file order, generated images from torch.randn latents);
    clean-fid's compute_fid(gen=..., fdir2=folder, mode="clean") gets torch-fidelity's Inception module on the
    same file as its custom feature extractor.
  * PPL: N pairs, Z space, t = 0, epsilon 1e-4, no crop, the same latents and per-pair noise and the same
    VGG16 / LPIPS files for all, wired exactly as benchmarks/bench_ppl.py wires them (its functions run here).
    clean-fid has no PPL.
  * LS: ours only, with the bundled toyfaces attribute classifier (40 attributes); no peer implements linear
    separability in PyTorch (NVIDIA's reference is TensorFlow 1).
The real pretrained weights cannot be downloaded offline; speed does not depend on their values, so the
metric values are only compared between tools, never with published numbers.

Table 2 (scaling): ours only, wall time and peak RSS against N (FID: N generated images against reference
statistics computed once beforehand; PPL: N pairs; LS: N samples), with the standard networks (Inception,
LPIPS-VGG16) on CUDA and the toyfaces networks (`toyfaces` features, `toyfaces-lpips`) on the CPU, where the
standard ones would take hours at N = 32000 (--scaling-networks overrides).

Every tool run is a fresh subprocess of this script (--worker METRIC:TOOL) that prints one JSON line: wall time
from its process start (imports included), CPU seconds (reaped children included), peak RSS (VmHWM) and the
value. Caches are off: a fresh $STYLEGAN_METRICS_HOME and $TORCH_HOME per run, STYLEGAN_METRICS_OFFLINE=1, and
every worker refuses internet connections. A peer that is not installed gets a row saying so.

Run (from the repository root; progress goes to stderr, the tables to stdout):
    python benchmarks/run_all.py                       # N=500, M=250, LS 10000, scaling 2000/8000/32000
                                                       # (estimated ~40 min on 2 idle cores, ~3 h beside a busy job)
    python benchmarks/run_all.py --quick               # tiny sizes: a smoke run of every row (~16 min on 2 busy cores)
    python benchmarks/run_all.py --only fid,ppl --skip-scaling
    python benchmarks/run_all.py --skip-peers --scaling-sizes 1000 4000 16000
    python benchmarks/run_all.py --device cuda         # all tools on the GPU; scaling with the standard networks
Peers: pip install '.[bench]' (torchmetrics, clean-fid; torch-fidelity is a dependency).
"""

from __future__ import annotations

import time

T_START = time.perf_counter()  # a worker's wall time counts its imports too

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_fid  # noqa: E402  (puts the repository root on sys.path)
import bench_ppl  # noqa: E402

TOOLS = {"fid": ("ours", "torch-fidelity", "torchmetrics", "clean-fid"),
         "ppl": ("ours", "torch-fidelity", "torchmetrics"),
         "ls": ("ours",)}
MODULES = {"torch-fidelity": "torch_fidelity", "torchmetrics": "torchmetrics", "clean-fid": "cleanfid"}
DEFAULTS = dict(num=500, ref=250, ls_num=10_000, scaling_sizes=[2000, 8000, 32000])
QUICK = dict(num=64, ref=64, ls_num=1000, scaling_sizes=[250, 500, 1000])
EPSILON, SEED = 1e-4, 0


# ----------------------------------------------------------------------------------------------------------------
# worker side: one tool, one metric, in a fresh process


def refuse_internet() -> None:
    """Any TCP connection (urllib, requests, torch.hub) raises: nothing may be downloaded silently."""
    connect = socket.socket.connect

    def guarded(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            raise RuntimeError(f"benchmark worker refused a connection to {address}: everything must be local")
        return connect(sock, address)

    socket.socket.connect = guarded
    bench_ppl.forbid_downloads()


def generator_path() -> str:
    from stylegan_metrics.networks.toyfaces_nets import GENERATOR_FILE, bundled_path

    return str(bundled_path(GENERATOR_FILE))


def fid_ours(args, G) -> float:
    if args.networks == "standard":
        return bench_fid.worker_ours(args)
    from stylegan_metrics import evaluate
    from stylegan_metrics.engine.metric import count_name

    # unbiased covariance (N - 1) as torch-fidelity, torchmetrics and clean-fid compute it
    [result] = evaluate(G, [f"fid{count_name(args.num)}_full"], data=args.reference, cov="unbiased",
                        features="toyfaces", batch_size=args.batch, seed=SEED, device=args.device, progress=False)
    return result.value


def fid_torchmetrics(args, G) -> float:
    import numpy as np
    import torch
    from PIL import Image
    from torchmetrics.image.fid import FrechetInceptionDistance

    from stylegan_core.data.images import to_uint8

    metric = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=args.weights).to(args.device)
    files = sorted(p for p in Path(args.reference).iterdir() if p.suffix.lower() == ".png")
    with torch.no_grad():
        for first in range(0, len(files), args.batch):
            images = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files[first:first + args.batch]])
            metric.update(torch.from_numpy(images).permute(0, 3, 1, 2).to(args.device), real=True)
        torch.manual_seed(SEED)
        for first in range(0, args.num, args.batch):
            z = torch.randn(min(args.batch, args.num - first), G.z_dim, device=args.device)
            metric.update(to_uint8(G(z)), real=False)
        return float(metric.compute())


def fid_clean_fid(args, G) -> float:
    import torch
    from cleanfid import fid as clean_fid
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from stylegan_core.data.images import to_uint8

    inception = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                            feature_extractor_weights_path=args.weights).eval().to(args.device)

    def features(x):  # clean-fid's float [B, 3, 299, 299] in [0, 255] -> [B, 2048]
        return inception(x.round().clamp(0, 255).to(torch.uint8))[0]

    def gen(z):  # clean-fid's latents -> images in [0, 255], quantized to 8 bits as for the other tools
        return to_uint8(G(z)).float()

    torch.manual_seed(SEED)
    return float(clean_fid.compute_fid(
        gen=gen, fdir2=args.reference, mode="clean", num_gen=args.num, batch_size=args.batch,
        device=torch.device(args.device), z_dim=G.z_dim, num_workers=os.cpu_count(), custom_feat_extractor=features,
        use_dataparallel=False, verbose=False))


def ppl_worker(args, G) -> tuple[float, str]:
    """(value, weights check) of PPL in Z at t = 0, as benchmarks/bench_ppl.py runs each tool."""
    if args.tool == "ours" and args.networks == "toyfaces":
        from stylegan_metrics import ppl

        # Z, t = 0, no crop: the only setting the peers offer, which no registered name (all cropped) matches
        res = ppl(G, space="z", sampling="end", num_samples=args.num, epsilon=EPSILON, crop=False,
                  batch_size=args.batch, seed=SEED, similarity="toyfaces-lpips", device=args.device, progress=False)
        return float(res.results["ppl_zend"]), "bundled toyfaces classifier"
    if args.tool == "ours":
        out = bench_ppl.run_ours(args, G, "end")
    else:
        out = {"torch-fidelity": bench_ppl.run_torch_fidelity, "torchmetrics": bench_ppl.run_torchmetrics}[args.tool](
            args, G)
    if "lpips" in out:  # the peer's LPIPS module, tensor by tensor against the VGG16 file and lpips' v0.1 heads
        out["weights"] = bench_ppl.weights_match(out["lpips"], Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
                                                 / bench_ppl.VGG_FILE)
    return float(out["value"]), out["weights"]


def ls_worker(args, G) -> dict[str, float]:
    from stylegan_metrics import evaluate, load_toyfaces_classifier
    from stylegan_metrics.engine.metric import count_name

    [res] = evaluate(G, [f"ls{count_name(args.num)}"], classifier=load_toyfaces_classifier(args.device),
                     batch_size=args.batch, seed=SEED, device=args.device, progress=False)
    return {f"ls_{k.rsplit('_', 1)[1]}": float(v) for k, v in res.results.items()}


def worker(args) -> None:
    refuse_internet()
    args.metric, args.tool = args.worker.split(":")
    args.ckpt, args.epsilon, args.seed, args.latents = generator_path(), EPSILON, SEED, "shared"  # bench_* names
    G = bench_fid.make_generator(args.ckpt).to(args.device)
    check = "-"
    if args.metric == "fid":
        fn = {"ours": fid_ours, "torch-fidelity": lambda a, _: bench_fid.worker_torch_fidelity(a),
              "torchmetrics": fid_torchmetrics, "clean-fid": fid_clean_fid}[args.tool]
        value = fn(args, G)
    elif args.metric == "ppl":
        value, check = ppl_worker(args, G)
    else:
        value = ls_worker(args, G)
    print(json.dumps({"job": args.worker, "wall_s": time.perf_counter() - T_START, "cpu_s": bench_fid.cpu_seconds(),
                      "peak_rss_mib": bench_fid.peak_rss_mib(), "value": value, "check": check}))


# ----------------------------------------------------------------------------------------------------------------
# parent side


def run_job(job: str, num: int, args, files: dict, home: Path, networks: str = "standard") -> dict:
    """One worker in a fresh process with fresh caches; its JSON result, plus `other_load` (the CPU share of all
    cores other processes used meanwhile) or `error`."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", job, "--num", str(num), "--batch",
           str(args.batch), "--device", args.device, "--networks", networks, "--reference",
           str(files["reference"]), "--weights", str(files["inception"])]
    torch_home = files["torch_home"] if job.startswith("ppl") else home / "torch"
    env = dict(os.environ, STYLEGAN_METRICS_HOME=str(home), STYLEGAN_METRICS_OFFLINE="1", TORCH_HOME=str(torch_home))
    if args.threads:  # torch, OpenMP and BLAS threads of every tool alike
        env.update({k: str(args.threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    print(f"running {job} N={num} ({networks} networks) ...", file=sys.stderr, flush=True)
    busy0, t0 = bench_ppl.machine_busy_seconds(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=bench_fid.ROOT)
    process_s, busy1 = time.perf_counter() - t0, bench_ppl.machine_busy_seconds()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"  -> FAILED (exit {proc.returncode})", file=sys.stderr, flush=True)
        return {"error": f"failed (exit {proc.returncode}): {last[:160]}".replace("|", "/")}
    result = json.loads(lines[-1])
    if busy0 is not None:
        result["other_load"] = max(busy1 - busy0 - result["cpu_s"], 0) / (process_s * os.cpu_count())
    print(f"  -> {result['wall_s']:.1f} s, {result['peak_rss_mib']:.0f} MiB", file=sys.stderr, flush=True)
    return result


def prepare_files(tmp: Path, args, metrics: list[str]) -> dict:
    """Reference PNGs, the Inception-v3 file and $TORCH_HOME with the VGG16 / LPIPS files, in `tmp`."""
    from stylegan_core.data.toyfaces import write_toyfaces
    from stylegan_metrics.demo import REFERENCE_WORLD
    from stylegan_metrics.testing import write_inception_v3_weights

    print(f"writing {args.ref} reference toyfaces and the weights files ...", file=sys.stderr, flush=True)
    files = {"reference": write_toyfaces(tmp / "reference", args.ref, resolution=32, seed=REFERENCE_WORLD,
                                         progress=False),
             "inception": write_inception_v3_weights(tmp / "weights" / "inception-random.pth", seed=0),
             "torch_home": tmp / "torch_home"}
    if "ppl" in metrics:
        try:
            bench_ppl.prepare_weights(tmp)
        except ModuleNotFoundError:  # torchmetrics missing: its heads check fails after both files are written
            pass
    return files


def reference_stats(files: dict, args, networks: str, tmp: Path) -> Path:
    """Statistics of the reference folder with the scaling networks, saved once so that FID's scaling runs
    only time the generated side."""
    from stylegan_metrics import compute_reference_stats

    print(f"reference statistics ({networks} networks) for the scaling runs ...", file=sys.stderr, flush=True)
    kw = dict(weights=files["inception"]) if networks == "standard" else dict(features="toyfaces")
    stats = compute_reference_stats(files["reference"], batch_size=args.batch, device=args.device, progress=False,
                                    cache=False, **kw)
    return stats.save(tmp / f"reference-{networks}.npz")


def fmt_value(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:.4g}" for k, v in value.items())
    return f"{value:.4f}"


def tool_label(tool: str) -> str:
    from importlib import metadata

    return f"{tool} {metadata.version('stylegan-metrics' if tool == 'ours' else tool)}"


def peer_table(results: dict, sizes: dict) -> None:
    print("| metric | tool | samples | wall s | CPU s | peak RSS MiB | other load | value | check | "
          "speed ratio | memory ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (metric, tool), r in results.items():
        if "wall_s" not in r:
            print(f"| {metric.upper()} | {tool} | {sizes[metric]} | {r['error']} | | | | | | | |")
            continue
        ours = results.get((metric, "ours"), {})
        speed = f"{r['wall_s'] / ours['wall_s']:.2f}x" if "wall_s" in ours else "-"
        memory = f"{ours['peak_rss_mib'] / r['peak_rss_mib']:.2f}x" if "wall_s" in ours else "-"
        load = f"{r['other_load']:.0%}" if "other_load" in r else "-"
        print(f"| {metric.upper()} | {tool_label(tool)} | {sizes[metric]} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
              f"{r['peak_rss_mib']:.0f} | {load} | {fmt_value(r['value'])} | {r['check']} | {speed} | {memory} |")


def scaling_table(results: dict, networks: str) -> None:
    print(f"| metric ({networks} networks) | N | wall s | s per 1k samples | marginal s per 1k | peak RSS MiB | "
          "other load |")
    print("|---|---|---|---|---|---|---|")
    previous = {}  # metric -> (N, result) of its last successful run
    for (metric, n), r in results.items():
        if "wall_s" not in r:
            print(f"| {metric.upper()} | {n} | {r['error']} | | | | |")
            continue
        marginal = "-"
        if metric in previous:
            n0, r0 = previous[metric]
            marginal = f"{(r['wall_s'] - r0['wall_s']) / (n - n0) * 1000:.2f}"
        previous[metric] = (n, r)
        load = f"{r['other_load']:.0%}" if "other_load" in r else "-"
        print(f"| {metric.upper()} | {n} | {r['wall_s']:.1f} | {r['wall_s'] / n * 1000:.2f} | {marginal} | "
              f"{r['peak_rss_mib']:.0f} | {load} |")
    print()
    for metric in dict.fromkeys(m for m, _ in results):
        ok = [(n, r) for (m, n), r in results.items() if m == metric and "wall_s" in r]
        if ok:
            per_k = ", ".join(f"{n / 1000:g}k {r['wall_s'] / n * 1000:.2f} s" for n, r in ok)
            rss = [r["peak_rss_mib"] for _, r in ok]
            print(f"{metric.upper()} time per 1k samples: {per_k}; peak RSS max/min = {max(rss) / min(rss):.2f}")


PEER_NOTES = {
    None: [
        "speed ratio = tool wall / ours wall (>1: ours faster); memory ratio = ours peak RSS / tool peak RSS "
        "(<1: ours smaller). Ours' own rows show 1.00x.",
        "wall s: from the worker process's start (imports, generator, networks, for FID the reference statistics) "
        "to the value; CPU s: user + system time, reaped child processes included; peak RSS: the worker's "
        "VmHWM (its own address space; not ru_maxrss, which Linux carries over from the parent). DataLoader "
        "worker processes (torch-fidelity's and clean-fid's reference reading) are not in "
        "it. other load: CPU time other processes used meanwhile, as a share of all cores (from /proc/stat); "
        "above ~10% the timings are contended.",
        "All tools: the bundled toyfaces generator (32 px, z 128), seeded random weights in the upstream file "
        "formats (the real ones cannot be downloaded here; speed does not depend on the values, so compare the "
        "values between tools only).",
    ],
    "fid": [
        "FID, same N generated and M reference images (toyfaces world 0 PNGs), batch B, Inception-v3 file for all. "
        "Differences: latents (ours: a per-index seeded table; torch-fidelity: np.random.RandomState(0); "
        "torchmetrics and clean-fid: torch.randn after torch.manual_seed(0)); resizing to 299 px (ours, "
        "torch-fidelity: TF1-compatible bilinear in the network; torchmetrics: its antialiased bilinear; "
        "clean-fid: PIL bicubic on float images, per image on the CPU, then rounded to uint8 for the Inception "
        "module); covariance and Frechet formula (ours: unbiased, Cholesky + eigh; torch-fidelity: eigvals; "
        "torchmetrics: eigvals of S1 S2 in torch; clean-fid: scipy.linalg.sqrtm). So the values differ, by small "
        "amounts.",
        "FID reference reading: ours and torch-fidelity read the folder with their own loaders; torchmetrics has "
        "no folder reader, so its worker opens the PNGs with PIL in file order, B at a time, in the main process; "
        "clean-fid reads and resizes them in os.cpu_count() DataLoader workers. clean-fid generates "
        "ceil(N/B) batches of B and keeps the first N features.",
        "clean-fid: custom_feat_extractor = torch-fidelity's FeatureExtractorInceptionV3 on the same file, so "
        "clean-fid never builds (or downloads) its own Inception; its statistics downloads are not on the "
        "gen + fdir2 path, and the worker refuses any internet connection anyway.",
    ],
    "ppl": [
        "PPL: N pairs, Z, slerp, t = 0 (the only setting the peers have: ours sampling='end'), epsilon 1e-4, no "
        "crop, no resize, the same z0/z1 and per-pair noise, the same VGG16 file and lpips v0.1 heads for all, "
        "wired by benchmarks/bench_ppl.py's functions (its docstring lists the remaining differences). check: "
        "the peer's LPIPS module compared tensor by tensor with those files ('ok'), ours: the file it loaded.",
        "PPL: clean-fid has no perceptual path length, so it has no PPL row.",
    ],
    "ls": [
        "LS: ours only (linear_separability, 40 attributes of the bundled toyfaces classifier, Z and W, "
        "sklearn LinearSVC, keep 0.5). No peer implements linear separability in PyTorch: torch-fidelity, "
        "torchmetrics and clean-fid have none, and NVIDIA's reference (stylegan's metrics/linear_separability.py) "
        "is TensorFlow 1 code with CelebA-HQ classifiers that cannot be downloaded here.",
    ],
}


def scaling_notes(networks: str, ref: int) -> list[str]:
    nets = ("Inception-v3 / LPIPS-VGG16 (random-valued files)" if networks == "standard" else
            "toyfaces (`toyfaces` features, `toyfaces-lpips`; the standard Inception / VGG16 would take hours "
            "at N = 32000 on a few CPU cores: --scaling-networks standard to run them anyway)")
    return [
        f"Scaling: ours only, one fresh process per (metric, N); networks {nets}. FID: N generated images "
        f"against statistics of the {ref} reference images computed once before the runs (so only the generated "
        "side scales); PPL: N pairs (Z, t = 0, as above); LS: N samples, the bundled toyfaces classifier "
        "whatever the networks.",
        "s per 1k samples = wall / N x 1000: it includes the fixed start-up (imports, networks, about the same "
        "for every N), so it falls with N; marginal s per 1k = (wall - previous wall) / (N - previous N) x 1000, "
        "constant when the cost is linear in N. Flat memory: peak RSS max/min near 1.",
    ]


def print_header(args, networks: str) -> None:
    import torch

    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"date: {datetime.datetime.now().isoformat(timespec='seconds')}; machine: {platform.machine()}, "
          f"{platform.processor() or 'cpu'}, os.cpu_count()={os.cpu_count()}, torch {torch.__version__} "
          f"(threads {args.threads or torch.get_num_threads()}), python {platform.python_version()}, "
          f"device {args.device}" + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    load = os.getloadavg()
    busy = "other load seen" if load[0] > 0.5 else "machine idle"
    print(f"load average at start (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} ({busy}; "
          f"{os.cpu_count()} cores)")
    print(f"sizes: FID N={args.num} generated, M={args.ref} reference; PPL N={args.num} pairs; LS N={args.ls_num}; "
          f"batch {args.batch}; scaling N = {', '.join(map(str, args.scaling_sizes))} ({networks} networks)")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, help=f"FID generated images and PPL pairs in the peer table "
                        f"(default {DEFAULTS['num']}; --quick {QUICK['num']})")
    parser.add_argument("--ref", type=int, help=f"FID reference images (default {DEFAULTS['ref']}; "
                        f"--quick {QUICK['ref']})")
    parser.add_argument("--ls-num", type=int, help=f"LS samples in the peer table (default {DEFAULTS['ls_num']}; "
                        f"--quick {QUICK['ls_num']})")
    parser.add_argument("--batch", type=int, default=32, help="batch size of every tool (default 32)")
    parser.add_argument("--scaling-sizes", type=int, nargs="+", help="N of the scaling table (default "
                        f"{' '.join(map(str, DEFAULTS['scaling_sizes']))}; --quick "
                        f"{' '.join(map(str, QUICK['scaling_sizes']))})")
    parser.add_argument("--scaling-networks", choices=["standard", "toyfaces"],
                        help="networks of the scaling table (default: standard on CUDA, toyfaces on the CPU)")
    parser.add_argument("--skip-peers", action="store_true", help="no peer table")
    parser.add_argument("--skip-scaling", action="store_true", help="no scaling table")
    parser.add_argument("--only", default="fid,ppl,ls", help="comma-separated metrics (default fid,ppl,ls)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every row")
    parser.add_argument("--device", default="cpu", help="torch device of every tool (default cpu)")
    parser.add_argument("--threads", type=int, help="OMP/BLAS/torch threads of every worker (default: one per "
                        "core; 1 is far faster while another job keeps a core busy)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--networks", default="standard", help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return parser, args


def main() -> None:
    parser, args = parse_args()
    if args.worker:
        worker(args)
        return
    metrics = [m.strip() for m in args.only.split(",") if m.strip()]
    if not metrics or set(metrics) - set(TOOLS):
        parser.error(f"--only: choose from {', '.join(TOOLS)}")
    networks = args.scaling_networks or ("standard" if args.device.startswith("cuda") else "toyfaces")
    sys.stdout.reconfigure(line_buffering=True)  # keep stdout and the stderr progress lines in order
    print_header(args, networks)
    sizes = {"fid": f"N={args.num}, M={args.ref}", "ppl": f"N={args.num} pairs", "ls": f"N={args.ls_num}"}
    count = {"fid": args.num, "ppl": args.num, "ls": args.ls_num}
    peers, scaling = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-all-") as tmp:
        tmp = Path(tmp)
        files = prepare_files(tmp, args, metrics)
        for metric in metrics if not args.skip_peers else []:
            for tool in TOOLS[metric]:
                if tool in MODULES and importlib.util.find_spec(MODULES[tool]) is None:
                    peers[metric, tool] = {"error": "not installed (pip install '.[bench]')"}
                    continue
                peers[metric, tool] = run_job(f"{metric}:{tool}", count[metric], args, files,
                                              tmp / f"home-{metric}-{tool}")
        if not args.skip_scaling:
            scaling_files = dict(files)
            if "fid" in metrics:
                scaling_files["reference"] = reference_stats(files, args, networks, tmp)
            for metric in metrics:
                for n in args.scaling_sizes:
                    scaling[metric, n] = run_job(f"{metric}:ours", n, args, scaling_files,
                                                 tmp / f"home-scaling-{metric}-{n}", networks)
    load = os.getloadavg()
    print(f"load average at end (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
    others = [r["other_load"] for r in [*peers.values(), *scaling.values()] if "other_load" in r]
    if others and max(others) > 0.1:
        print(f"WARNING: other processes used up to {max(others):.0%} of the cores during the runs (column 'other "
              "load'): the timings are contended, and with one thread per core they can be several times slower "
              "than on an idle machine; rerun when idle (or compare with --threads 1).")
    if peers:
        print()
        peer_table(peers, sizes)
        print()
        for note in PEER_NOTES[None] + [n for m in metrics for n in PEER_NOTES[m]]:
            print(f"note: {note}")
    if scaling:
        print()
        scaling_table(scaling, networks)
        print()
        for note in scaling_notes(networks, args.ref):
            print(f"note: {note}")


if __name__ == "__main__":
    main()
