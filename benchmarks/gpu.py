"""GPU throughput in one run: FID end to end against torch-fidelity and torchmetrics, where the time goes (latents
and noise, the generator alone and inside our sampling, the feature network at fp32 / tf32 / bf16), and PPL.

Defaults (`--device cuda`): a 256-px StyleGAN2 with random weights, `stylegan_core.Generator(arch='stylegan2',
img_resolution=256, channel_base=16384, z_dim=512, w_dim=512)` after torch.manual_seed(0); FID of N = 10,000
generated images against M = 500 reference PNGs (benchmarks/bench_fid.write_reference), batch 64, the same
seeded random-valued Inception-v3 file for every tool (`stylegan_metrics.testing`); stages timed on 2,048 images
each; PPL (w, end points) on 2,000 pairs with LPIPS-VGG16 from a seeded random-valued VGG16 file. `--tiny`: a
32-px generator, 32 images, the bundled toyfaces networks (no weights files), for a smoke run on the CPU.

Tables (markdown, stdout):
  * stages: images/s of latents and noise (noise v1: the former per-sample CPU torch.Generator loop and copy;
    noise v2: stylegan_core.networks.noise on the device), the generator alone (G(z), its own torch.randn noise on
    the device) and inside our sampling (`generate_batches`, with v2 noise, and with v1 noise patched back in),
    per precision, and the feature network per precision and per call size (--feature-batch), then each of
    --extra-features likewise (default `dinov2-vit-l14`, EDM2's FD_DINOv2 network, on the generator's 256-px
    images resized to 224 inside it; seeded random-valued weights in Meta's layout);
  * FID end to end: ours per precision, ours with FID+KID+IS in one evaluation, ours with larger feature batches,
    and the peers (torch-fidelity's calculate_metrics; torchmetrics' FrechetInceptionDistance, wired as
    benchmarks/run_all.py wires them), each timed from the call to the value in this process after a warm-up run
    (imports and CUDA start-up excluded), with a fresh statistics cache per row; images/s = N / seconds;
  * PPL: pairs/s of ours, with v2 and with v1 noise.
On CUDA it also checks that the noise equals the CPU's (integer bits exactly; float32 values). Peers are optional
(pip install ".[bench]"); `--skip-peers` leaves them out, and a peer that is missing gets a row saying so.
Note: PyTorch leaves TF32 on for cuDNN convolutions by default, so the peers' Inception runs in TF32 on Ampere and
later GPUs, while ours runs in fp32 unless --precision says otherwise.

Run (from the repository root):
    python benchmarks/gpu.py --device cuda                    # the H200 table (~5 min)
    python benchmarks/gpu.py --device cpu --tiny --skip-peers # smoke run (~20 s on 2 CPU cores)
    python benchmarks/gpu.py --device cpu --resolution 256 --channel-base 512 --channel-max 32 --z-dim 512 \\
        --batch 64 --stage-images 256 --only stages --no-features   # noise and generate_batches before/after
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_fid  # noqa: E402  (puts the repository root on sys.path)

import torch  # noqa: E402

FULL = dict(resolution=256, channel_base=16384, channel_max=512, z_dim=512, num=10_000, ref=500, batch=64,
            stage_images=2048, ppl_pairs=2000, features="inception-v3", similarity="lpips-vgg16",
            extra_features="dinov2-vit-l14")
TINY = dict(resolution=32, channel_base=512, channel_max=32, z_dim=64, num=32, ref=16, batch=16, stage_images=32,
            ppl_pairs=16, features="toyfaces", similarity="toyfaces-lpips", extra_features="")
PRECISIONS = ("fp32", "tf32", "bf16")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(step, images: int, batch: int, device: torch.device, warmup: int = 2) -> tuple[float, float]:
    """Images per second of step(start, count) over `images` images in batches, after `warmup` batches: per wall
    second, and per second of this process's CPU time (all threads; steadier than wall time on a shared CPU)."""
    for _ in range(warmup):
        step(0, batch)
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for start in range(0, images, batch):
        step(start, min(batch, images - start))
    sync(device)
    return images / (time.perf_counter() - t0), images / max(time.process_time() - c0, 1e-9)


def timed(fn) -> tuple[float, object]:
    """(seconds, value) of fn()."""
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def noise_v1(seeds: torch.Tensor, resolutions: list[int], device) -> list[torch.Tensor]:
    """The former noise (sampling version 1): one CPU torch.Generator per sample, a Python loop, then a copy."""
    per_sample = []
    for seed in seeds.tolist():
        g = torch.Generator().manual_seed(int(seed))
        per_sample.append([torch.randn(1, 1, r, r, generator=g) for r in resolutions])
    return [torch.cat(maps).to(device) for maps in zip(*per_sample)]


@contextlib.contextmanager
def v1_noise():
    """Synthesis networks draw sampling version 1's noise inside the block."""
    from stylegan_core.networks.synthesis import SynthesisBase

    saved = SynthesisBase.draw_noise
    SynthesisBase.draw_noise = lambda self, seeds, device: noise_v1(seeds, self.layer_resolutions, device)
    try:
        yield
    finally:
        SynthesisBase.draw_noise = saved


def stage_rows(G, args, dev: torch.device, weights: dict) -> list[tuple[str, float, float, str]]:
    """(stage, images/s, images per CPU second, ratio note) rows."""
    from stylegan_core.networks.noise import noise_maps
    from stylegan_metrics.engine.sampling import generate_batches, latents, noise_seeds, to_device
    from stylegan_metrics.precision import precision_context
    from stylegan_metrics.networks.registry import build_feature_extractor

    n, b, res = args.stage_images, args.batch, G.synthesis.layer_resolutions
    rows = []

    def add(name, step, base=None):
        rate, cpu_rate = throughput(step, n, b, dev)
        rows.append((name, rate, cpu_rate, f"{rate / rows[base][1]:.2f}x {rows[base][0]}" if base is not None else "-"))

    add("latents (per-index table) to the device", lambda s, c: to_device(latents(0, s, c, G.z_dim), dev))
    add("noise v1: per-sample CPU generators, copied", lambda s, c: noise_v1(noise_seeds(0, s, c), res, dev))
    add("noise v2: counter-based, on the device",
        lambda s, c: noise_maps(to_device(noise_seeds(0, s, c), dev), res), base=1)
    add("latents + noise v2", lambda s, c: (to_device(latents(0, s, c, G.z_dim), dev),
                                            noise_maps(to_device(noise_seeds(0, s, c), dev), res)), base=1)
    for p in args.precisions:
        def plain(s, c, p=p):
            with torch.inference_mode(), precision_context(p, dev.type):
                G(torch.randn(c, G.z_dim, device=dev), noise_mode="random")
        add(f"G(z) alone, torch.randn noise on the device, {p}", plain)
        g_alone = len(rows) - 1

        def ours(s, c, p=p):
            for _ in generate_batches(G, c, first=s, batch_size=c, seed=0, device=dev, uint8=False, precision=p):
                pass
        add(f"G with our sampling (generate_batches), noise v2, {p}", ours, base=g_alone)
        with v1_noise():
            add(f"G with our sampling, noise v1 (before), {p}", ours, base=g_alone)
        for mode in args.compile if p == args.precisions[0] else ():
            compiled = compiled_or_error(G, mode)

            def plain_compiled(s, c, p=p, compiled=compiled):
                with torch.inference_mode(), precision_context(p, dev.type):
                    compiled(torch.randn(c, G.z_dim, device=dev), noise_mode="random")
            add_or_fail(rows, f"G(z) alone, torch.compile mode={mode}, {p}", plain_compiled, n, b, dev, g_alone)
    if args.no_features:
        return rows
    images = torch.randint(0, 256, (max(args.feature_batches), 3, G.img_resolution, G.img_resolution),
                           dtype=torch.uint8, generator=torch.Generator().manual_seed(0)).to(dev)
    for features, p in ((f, p) for f in [args.features, *args.extra_features] for p in args.precisions):
        extractor = build_feature_extractor(features, weights=weights.get(features), device=dev, precision=p)
        for fb in args.feature_batches:
            rate, cpu_rate = throughput(lambda s, c: extractor.outputs(images[:c]), max(n, fb), fb, dev)
            base = next((r for r in rows if r[0].startswith(f"{features} fp32,")), None)
            rows.append((f"{features} {p}, {fb} images per call", rate, cpu_rate,
                         f"{rate / base[1]:.2f}x {base[0]}" if base else "-"))
        plain_row = len(rows) - len(args.feature_batches)
        for mode in args.compile if p == args.precisions[0] else ():  # static shapes: one graph per call size
            compiled = dataclasses.replace(extractor, module=compiled_or_error(extractor.module, mode))
            add_or_fail(rows, f"{features} {p}, {args.batch} images per call, torch.compile mode={mode}",
                        lambda s, c, compiled=compiled: compiled.outputs(images[:c]), max(n, args.batch),
                        args.batch, dev, plain_row)
    return rows


def compiled_or_error(module, mode: str):
    """torch.compile(module, mode=mode) with static shapes; compilation itself happens at the first call."""
    return torch.compile(module, mode=mode, dynamic=False)


def add_or_fail(rows: list, name: str, step, images: int, batch: int, dev: torch.device, base: int) -> None:
    """A row measured like the others (the warm-up calls compile), or a row saying why it could not run: a
    compiler that is missing or fails on one machine must not cost the rest of the table."""
    try:
        rate, cpu_rate = throughput(step, images, batch, dev)
    except Exception as e:  # noqa: BLE001 (any compiler failure is reported, not raised)
        rows.append((name, float("nan"), float("nan"), f"failed: {type(e).__name__}: {str(e)[:80]}"))
        return
    rows.append((name, rate, cpu_rate, f"{rate / rows[base][1]:.2f}x {rows[base][0]}"))


def e2e_rows(G, args, dev: torch.device, weights: dict, reference: Path, ckpt: Path) -> list[tuple]:
    """(tool, setting, seconds, value) rows of FID end to end."""
    from stylegan_metrics import evaluate, fid
    from stylegan_metrics.engine.metric import count_name

    features, w = args.e2e_features, weights.get(args.e2e_features)
    common = dict(batch_size=args.batch, seed=0, features=features, weights=w, device=dev, progress=False)

    def fresh_cache() -> None:  # no row reads statistics an earlier row cached
        os.environ["STYLEGAN_METRICS_HOME"] = tempfile.mkdtemp(prefix="home-", dir=reference.parent)

    fresh_cache()
    fid(G, reference, num_gen=min(args.num, 2 * args.batch), **common)  # warm-up: cuDNN, allocator, imports
    rows = []
    for p in args.precisions:
        fresh_cache()
        seconds, r = timed(lambda: fid(G, reference, num_gen=args.num, precision=p, **common))
        rows.append(("ours", f"FID, {p}", seconds, r.value))
    names = [f"fid{count_name(args.num)}_full", f"kid{count_name(args.num)}_full"]
    names += [f"is{count_name(args.num)}"] if features == "inception-v3" else []  # IS needs Inception's logits
    fresh_cache()
    seconds, rs = timed(lambda: evaluate(G, names, data=reference, cov="unbiased", **common))
    rows.append(("ours", f"{'FID+KID+IS' if len(names) == 3 else 'FID+KID'} in one evaluation, fp32", seconds,
                 rs[0].value))
    for fb in [f for f in args.feature_batches if f > args.batch]:
        fresh_cache()
        seconds, [r] = timed(lambda: evaluate(G, [f"fid{count_name(args.num)}_full"], data=reference, cov="unbiased",
                                              feature_batch_size=fb, **common))
        rows.append(("ours", f"FID, fp32, {fb} images per feature call", seconds, r.value))
    if args.skip_peers:
        return rows
    import run_all  # noqa: E402  (peer wiring shared with benchmarks/run_all.py)

    ns = SimpleNamespace(ckpt=str(ckpt), num=args.num, batch=args.batch, reference=str(reference), weights=w,
                         device=str(dev))
    peers = {"torch-fidelity": lambda: bench_fid.worker_torch_fidelity(ns),
             "torchmetrics": lambda: run_all.fid_torchmetrics(ns, G)}
    for tool, fn in peers.items():
        try:
            __import__(run_all.MODULES[tool])
        except ModuleNotFoundError:
            rows.append((tool, "not installed (pip install '.[bench]')", None, None))
            continue
        full, ns.num = ns.num, min(args.num, 2 * args.batch)
        fn()  # warm-up
        ns.num = full
        seconds, value = timed(fn)
        rows.append((tool, "FID, PyTorch's default TF32 settings", seconds, value))
    return rows


def ppl_rows(G, args, dev: torch.device, weights: dict) -> list[tuple[str, float]]:
    from stylegan_metrics import ppl

    kw = dict(space="w", sampling="end", num_samples=args.ppl_pairs, batch_size=args.batch, seed=0,
              similarity=args.similarity, weights=weights.get(args.similarity), device=dev, progress=False)
    ppl(G, **dict(kw, num_samples=args.batch))  # warm-up
    rows = [("ours, noise v2", timed(lambda: ppl(G, **kw))[0])]
    with v1_noise():
        rows.append(("ours, noise v1 (before)", timed(lambda: ppl(G, **kw))[0]))
    return rows


def noise_check(G, dev: torch.device) -> str:
    """How the noise drawn on `dev` compares with the CPU's."""
    from stylegan_core.networks.noise import noise_maps, pair_bits, sample_keys

    seeds = torch.randint(0, 2 ** 62, (64,), generator=torch.Generator().manual_seed(0))
    keys = sample_keys(seeds)
    bits_equal = torch.equal(pair_bits(keys, 0, 1 << 16), pair_bits(keys.to(dev), 0, 1 << 16).cpu())
    res = G.synthesis.layer_resolutions
    cpu, gpu = noise_maps(seeds, res), noise_maps(seeds.to(dev), res)
    diff = [(a - b.cpu()).abs() for a, b in zip(cpu, gpu)]
    differing = sum(int((d > 0).sum()) for d in diff)
    return (f"noise on {dev} vs the CPU: integer bits {'identical' if bits_equal else 'DIFFERENT'}; float32 values: "
            f"{differing} of {sum(d.numel() for d in diff):,} differ, largest difference "
            f"{max(float(d.max()) for d in diff):.2g}")


def print_table(header: list[str], rows: list[list]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    print()


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="torch device (default cuda)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes and the toyfaces networks (a smoke run)")
    parser.add_argument("--skip-peers", action="store_true", help="no torch-fidelity / torchmetrics rows")
    parser.add_argument("--only", default="stages,fid,ppl", help="comma-separated tables (default stages,fid,ppl)")
    parser.add_argument("--no-features", action="store_true", help="no feature-network stages")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's, one per core)")
    parser.add_argument("--precisions", help="comma-separated (default fp32,tf32,bf16 on CUDA, fp32 elsewhere)")
    parser.add_argument("--feature-batches", help="comma-separated images per feature call (default: batch, and on "
                        "CUDA also 4 x batch)")
    parser.add_argument("--compile", default="none", help="comma-separated torch.compile modes to measure G and the "
                        "feature network with, in the first of --precisions: default, reduce-overhead (CUDA graphs), "
                        "max-autotune (default: none; each compilation takes a while)")
    parser.add_argument("--extra-features", help="comma-separated feature networks timed after the standard one "
                        "in the stages table, on seeded random-valued weights (default dinov2-vit-l14; none with "
                        "--tiny; '' for none)")
    for name in ("resolution", "channel-base", "channel-max", "z-dim", "num", "ref", "batch", "stage-images",
                 "ppl-pairs"):
        parser.add_argument(f"--{name}", type=int, help=f"default {FULL[name.replace('-', '_')]} "
                            f"({TINY[name.replace('-', '_')]} with --tiny)")
    args = parser.parse_args()
    for key, value in (TINY if args.tiny else FULL).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    args.only = set(args.only.split(","))
    args.extra_features = [f for f in args.extra_features.split(",") if f]
    cuda = args.device.startswith("cuda")
    args.precisions = args.precisions.split(",") if args.precisions else list(PRECISIONS if cuda else ["fp32"])
    args.feature_batches = [int(x) for x in args.feature_batches.split(",")] if args.feature_batches else \
        [args.batch, 4 * args.batch] if cuda else [args.batch]
    args.e2e_features = "inception-v3" if not args.skip_peers else args.features  # peers compute Inception only
    args.compile = [] if args.compile == "none" else args.compile.split(",")
    return args


def main() -> None:
    args = parse_args()
    import stylegan_core
    from stylegan_core.allocator import keep_freed_memory
    from stylegan_metrics.testing import write_dinov2_weights, write_inception_v3_weights, write_vgg16_weights

    keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sys.stdout.reconfigure(line_buffering=True)
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "none"
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.machine()}, os.cpu_count()={os.cpu_count()}, GPU {gpu}, torch {torch.__version__} "
          f"(threads {torch.get_num_threads()}), python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    config = dict(arch="stylegan2", img_resolution=args.resolution, channel_base=args.channel_base,
                  channel_max=args.channel_max, z_dim=args.z_dim, w_dim=args.z_dim)
    print(f"generator: stylegan_core.Generator({', '.join(f'{k}={v!r}' for k, v in config.items())}), random init; "
          f"batch {args.batch}; precisions {', '.join(args.precisions)}")
    torch.manual_seed(0)
    G = stylegan_core.Generator(**config).eval().requires_grad_(False).to(dev)
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        tmp = Path(tmp)
        weights = {}
        needed = {args.features, args.e2e_features} if args.only & {"stages", "fid"} else set()
        if "inception-v3" in needed:
            weights["inception-v3"] = str(write_inception_v3_weights(tmp / "inception.pth"))
        for name in args.extra_features if "stages" in args.only and not args.no_features else ():
            if name.startswith("dinov2-"):  # Meta's layout, seeded random values (~1.2 GB for vit-l14)
                arch = name.removeprefix("dinov2-").removesuffix("-pil")
                weights[name] = str(write_dinov2_weights(tmp / f"{name}.pth", arch))
        if "ppl" in args.only and args.similarity == "lpips-vgg16":
            weights["lpips-vgg16"] = str(write_vgg16_weights(tmp / "vgg16.pth"))
        if dev.type == "cuda":
            print(noise_check(G, dev))
        print()
        if "stages" in args.only:
            rows = stage_rows(G, args, dev, weights)
            print(f"Stages ({args.stage_images} images each, {args.features} features):\n")
            print_table(["stage", "images/s", "images per CPU s", "ratio (images/s)"],
                        [[name, f"{rate:.1f}", f"{cpu:.1f}", note] for name, rate, cpu, note in rows])
        if "fid" in args.only:
            reference = tmp / "reference"
            bench_fid.write_reference(reference, args.ref, size=args.resolution)
            ckpt = stylegan_core.save_checkpoint(tmp / "G.pt", G=G.cpu(), G_ema=G.cpu())
            G = G.to(dev)
            rows = e2e_rows(G, args, dev, weights, reference, ckpt)
            base = next((r[2] for r in rows if r[0] == "torch-fidelity" and r[2]), None)
            print(f"FID end to end (N={args.num} generated, M={args.ref} reference images, {args.e2e_features}):\n")
            print_table(["tool", "setting", "seconds", "images/s", "value", "speed vs torch-fidelity"],
                        [[tool, what, "-" if s is None else f"{s:.2f}", "-" if s is None else f"{args.num / s:.1f}",
                          "-" if v is None else f"{v:.4f}", f"{base / s:.2f}x" if base and s else "-"]
                         for tool, what, s, v in rows])
        if "ppl" in args.only:
            rows = ppl_rows(G, args, dev, weights)
            print(f"PPL ({args.ppl_pairs} pairs, w, end points, {args.similarity}, fp32):\n")
            print_table(["tool", "seconds", "pairs/s", "speed vs noise v1"],
                        [[name, f"{s:.2f}", f"{args.ppl_pairs / s:.1f}", f"{rows[1][1] / s:.2f}x"] for name, s in rows])


if __name__ == "__main__":
    main()
