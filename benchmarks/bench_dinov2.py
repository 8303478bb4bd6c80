"""Throughput of our `dinov2-vit-l14` feature network against timm's `vit_large_patch14_dinov2`, same weights.

Both networks get the same seeded random-valued state dict in Meta's `dinov2_vitl14_pretrain.pth` layout
(`stylegan_metrics.testing.dinov2_state_dict`; the real file cannot be downloaded offline, and speed does not depend
on the values); timm's model is built for 224 x 224 inputs (`img_size=224`, `num_classes=0`: the CLS token after the
final norm) and loads that dict through its own converter (`checkpoint_filter_fn`, which resamples the position
embeddings once, by output size with antialias, where Meta and ours interpolate them by Meta's scale-factor rule at
every call). Rows (images/s and images per CPU second; one warm-up batch each, then --repeats rounds in which the
rows take turns, the best round of each counting):
  * ours, uint8 [B, 3, 224, 224] -> features: EDM2's resize (bicubic with antialias to 224) and normalisation
    included, as an evaluation runs it;
  * ours, the ViT alone, and timm's, on the same preprocessed float batch.
It also prints the largest difference between our and timm's features (from the position embeddings above).
timm is optional (`pip install timm`); without it the timm row says so.

Run (from the repository root):
    python benchmarks/bench_dinov2.py                          # CPU, batch 4, 3 batches, 2 rounds (~4 min, 2 cores)
    python benchmarks/bench_dinov2.py --device cuda --batch 64 --batches 10
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(rows: list, *, batches: int, repeats: int, device: torch.device) -> list[tuple[float, float]]:
    """(images/s, images per CPU second) of each (name, fn, input) row: one warm-up call each, then `repeats` rounds
    in which every row makes `batches` calls in turn (rows interleaved, so load from other processes falls on all
    of them alike); the best round of each row counts. CPU seconds are this process's, all threads."""
    best = [(float("inf"), float("inf"))] * len(rows)
    with torch.inference_mode():
        for _, fn, x in rows:
            fn(x)
        sync(device)
        for _ in range(repeats):
            for i, (_, fn, x) in enumerate(rows):
                t0, c0 = time.perf_counter(), time.process_time()
                for _ in range(batches):
                    fn(x)
                sync(device)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                best[i] = (min(best[i][0], wall), min(best[i][1], cpu))
    return [(batches * x.shape[0] / wall, batches * x.shape[0] / cpu) for (_, _, x), (wall, cpu) in zip(rows, best)]


def timm_model(state: dict, device: torch.device):
    import timm
    from timm.models.vision_transformer import checkpoint_filter_fn

    model = timm.create_model("vit_large_patch14_dinov2", pretrained=False, num_classes=0, img_size=224)
    model.load_state_dict(checkpoint_filter_fn(state, model), strict=True)
    return model.eval().requires_grad_(False).to(device), timm.__version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=4, help="images per call (default 4)")
    parser.add_argument("--batches", type=int, default=3, help="timed calls per repeat (default 3)")
    parser.add_argument("--repeats", type=int, default=2, help="timed rounds; the best counts (default 2)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from stylegan_metrics.networks.dinov2 import DinoV2Features, load_dinov2, preprocess
    from stylegan_metrics.testing import dinov2_state_dict

    dev = torch.device(args.device)
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "none"
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {cpu}, os.cpu_count()={os.cpu_count()}, GPU {gpu}, torch {torch.__version__} "
          f"(threads {torch.get_num_threads()}), python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    state = dinov2_state_dict("vit-l14", seed=0)
    ours = DinoV2Features(load_dinov2({k: v.clone() for k, v in state.items()})).to(dev)
    images = torch.randint(0, 256, (args.batch, 3, 224, 224), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0)).to(dev)
    x = preprocess(images)
    rows = [("ours dinov2-vit-l14, uint8 -> features (EDM2 resize included)", ours, images),
            ("ours dinov2-vit-l14, ViT alone", ours.vit, x)]
    try:
        theirs, version = timm_model(state, dev)
        rows.append((f"timm {version} vit_large_patch14_dinov2 (img_size=224), ViT alone", theirs, x))
    except ModuleNotFoundError:
        theirs = None
    rates = measure(rows, batches=args.batches, repeats=args.repeats, device=dev)
    print(f"\nDINOv2 ViT-L/14 at 224 x 224, batch {args.batch}, {args.batches} timed batches per round, best of "
          f"{args.repeats} interleaved rounds, fp32, {dev}:\n")
    print("| network | images/s | images per CPU s | vs ours, ViT alone (images per CPU s) |")
    print("|---|---|---|---|")
    for (name, _, _), (rate, cpu_rate) in zip(rows, rates):
        print(f"| {name} | {rate:.3f} | {cpu_rate:.3f} | {cpu_rate / rates[1][1]:.2f}x |")
    if theirs is None:
        print("| timm vit_large_patch14_dinov2 | not installed (pip install timm) | - | - |")
    if theirs is not None:
        with torch.inference_mode():
            a, b = ours.vit(x), theirs(x)
        print(f"\nlargest |ours - timm| over the batch: {float((a - b).abs().max()):.3g} "
              f"(features of size ~{float(a.abs().max()):.3g})")


if __name__ == "__main__":
    main()
