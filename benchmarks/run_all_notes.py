"""What run_all.py prints besides its tables: the header (command, machine, load, sizes) and the notes on how each
tool was run and what the columns mean."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys
from pathlib import Path


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
        "wired by benchmarks/ppl_peers.py (bench_ppl.py's docstring lists the remaining differences). check: "
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
