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
    VGG16 / LPIPS files for all, wired exactly as benchmarks/bench_ppl.py wires them (benchmarks/ppl_peers.py).
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
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_fid  # noqa: E402  (puts the repository root on sys.path)
import ppl_peers  # noqa: E402
from measure import machine_busy_seconds, refuse_internet  # noqa: E402
from run_all_notes import PEER_NOTES, print_header, scaling_notes  # noqa: E402

TOOLS = {"fid": ("ours", "torch-fidelity", "torchmetrics", "clean-fid"),
         "ppl": ("ours", "torch-fidelity", "torchmetrics"),
         "ls": ("ours",)}
MODULES = {"torch-fidelity": "torch_fidelity", "torchmetrics": "torchmetrics", "clean-fid": "cleanfid"}
DEFAULTS = dict(num=500, ref=250, ls_num=10_000, scaling_sizes=[2000, 8000, 32000])
QUICK = dict(num=64, ref=64, ls_num=1000, scaling_sizes=[250, 500, 1000])
EPSILON, SEED = 1e-4, 0


# ----------------------------------------------------------------------------------------------------------------
# worker side: one tool, one metric, in a fresh process


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
    """(value, weights check) of PPL in Z at t = 0, as benchmarks/bench_ppl.py runs each tool (ppl_peers.py)."""
    if args.tool == "ours" and args.networks == "toyfaces":
        from stylegan_metrics import ppl

        # Z, t = 0, no crop: the only setting the peers offer, which no registered name (all cropped) matches
        res = ppl(G, space="z", sampling="end", num_samples=args.num, epsilon=EPSILON, crop=False,
                  batch_size=args.batch, seed=SEED, similarity="toyfaces-lpips", device=args.device, progress=False)
        return float(res.value), "bundled toyfaces classifier"  # one result: Z, end
    if args.tool == "ours":
        out = ppl_peers.run_ours(args, G, "end")
    else:
        out = {"torch-fidelity": ppl_peers.run_torch_fidelity, "torchmetrics": ppl_peers.run_torchmetrics}[args.tool](
            args, G)
    if "lpips" in out:  # the peer's LPIPS module, tensor by tensor against the VGG16 file and lpips' v0.1 heads
        out["weights"] = ppl_peers.weights_match(out["lpips"], Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
                                                 / ppl_peers.VGG_FILE)
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
    busy0, t0 = machine_busy_seconds(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=bench_fid.ROOT)
    process_s, busy1 = time.perf_counter() - t0, machine_busy_seconds()
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
            ppl_peers.prepare_weights(tmp)
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
