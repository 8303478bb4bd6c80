"""Build the NVIDIA-pickle test fixtures in tests/fixtures/ with NVIDIA's own network code (run once, on the CPU).

What it writes (tiny networks with seeded random weights, pickled as NVIDIA's training loops write their
`network-snapshot-*.pkl`: a dict with 'G', 'D', 'G_ema', 'augment_pipe' and 'training_set_kwargs', each network
a `torch_utils.persistence` record; only the module source text inside each record is replaced by a one-line
stub, so that no NVIDIA code is stored with the tests):

- nvidia_stylegan3_t.pkl: a StyleGAN3-T generator (networks_stylegan3, 32 px, the default 14 layers,
  conv_clamp 256, as train.py --cfg=stylegan3-t builds it, only narrower).
- nvidia_stylegan3_r.pkl: a StyleGAN3-R generator (1x1 convolutions, radial filters, doubled channels) at
  16 px with non-default num_layers=8, margin_size=6 and a conv_clamp of 1 that actually clips.
- nvidia_ada_conditional.pkl: a conditional StyleGAN2-ADA generator (stylegan2-ada-pytorch's
  training/networks.py, c_dim=4, 16 px).
- <name>_expected.npz next to each: NVIDIA's outputs for fixed latents z (and one-hot labels c): ws at
  psi 1 and 0.7 and with truncation_cutoff, images at psi 1 and 0.7 with noise_mode='const', and (StyleGAN3)
  the image at psi 0.7 after setting G.synthesis.input.transform to a rotation + translation (as NVIDIA's
  gen_images.py does). For StyleGAN3 also NVIDIA's metrics/equivariance.py PSNRs (EQ-T, EQ-T_frac, EQ-R) for a
  few samples from a fixed torch seed, and, for one batch of 2 per kind, the transform drawn, both images and
  the squared-error and mask sums that NVIDIA's transform functions give for them ('parts_*').

NVIDIA's code is imported, never copied, from the checkouts given on the command line; each part runs in
its own subprocess because both checkouts have top-level packages of the same names. Small shims stand
in for modules their imports need but inference does not use (`requests`; `pkg_resources.parse_version`).
Without CUDA their ops fall back to their reference (pure PyTorch) implementations.

Rerun (under a minute on one CPU core, in this project's environment; clone NVIDIA's repositories somewhere
outside this one, here SRC):
    git clone https://github.com/NVlabs/stylegan3 SRC/stylegan3
    git clone https://github.com/NVlabs/stylegan2-ada-pytorch SRC/stylegan2-ada-pytorch
    python scripts/make_stylegan3_fixtures.py --stylegan3-src SRC/stylegan3 --ada-src SRC/stylegan2-ada-pytorch
Networks and outputs are deterministic (seeded); only the bytes of the torch storages inside the pickles
differ from run to run (torch writes a fresh serialization id). --out writes elsewhere than tests/fixtures.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import pickle
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch

NUM_LATENTS = 4
TRANSLATE, ANGLE = (0.1, -0.15), 20.0  # gen_images.py --translate=0.1,-0.15 --rotate=20
EQ_SEED, EQ_SAMPLES, EQ_BATCH = 5, 8, 4  # equivariance: torch.manual_seed, samples, NVIDIA's batch size


def install_shims() -> None:
    """Stand-ins for modules that NVIDIA's imports need but nothing here calls."""
    sys.modules.setdefault("requests", types.ModuleType("requests"))  # dnnlib.util downloads
    try:
        import pkg_resources  # noqa: F401  (conv2d_gradfix's version check)
    except ImportError:
        import packaging.version
        shim = types.ModuleType("pkg_resources")
        shim.parse_version = packaging.version.parse
        sys.modules["pkg_resources"] = shim


def randomize(module: torch.nn.Module, seed: int) -> None:
    """Seeded non-trivial weights: random biases, magnitudes, noise strengths, w_avg and input affine."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in list(module.named_parameters()) + list(module.named_buffers()):
            if name.endswith("magnitude_ema"):
                p.copy_(torch.rand(p.shape, generator=gen) * 1.5 + 0.5)
            elif name.endswith(("bias", "noise_strength", "w_avg")):
                p.add_(torch.randn(p.shape, generator=gen) * (0.2 if name.endswith("bias") else 0.5))
            elif name.endswith("input.affine.weight"):  # zero at init: give every sample its own rotation / shift
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            elif p.dtype.is_floating_point and name.endswith("weight"):
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)


def snapshot(G_ema, G, D, augment_pipe, training_set_kwargs: dict) -> dict:
    """The dict NVIDIA's training_loop.py pickles: deep copies in eval mode without grad, on the CPU."""
    data = dict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe, training_set_kwargs=dict(training_set_kwargs))
    for key, value in data.items():
        if isinstance(value, torch.nn.Module):
            data[key] = copy.deepcopy(value).eval().requires_grad_(False).cpu()
    return data


def nvidia_outputs(G, c, transform_of, **synthesis_kwargs) -> dict:
    """ws and const-noise images for fixed z (psi 1, 0.7, cutoff) and, if given, with the input transform set."""
    z = torch.from_numpy(np.random.RandomState(123).randn(NUM_LATENTS, G.z_dim).astype(np.float32))
    out = dict(z=z)
    with torch.no_grad():
        out["ws"] = G.mapping(z, c)
        out["ws_psi07"] = G.mapping(z, c, truncation_psi=0.7)
        out["ws_psi05_cutoff2"] = G.mapping(z, c, truncation_psi=0.5, truncation_cutoff=2)
        out["img"] = G.synthesis(out["ws"], noise_mode="const", **synthesis_kwargs)
        out["img_psi07"] = G(z, c, truncation_psi=0.7, noise_mode="const", **synthesis_kwargs)
        if transform_of is not None:
            m = np.linalg.inv(transform_of(TRANSLATE, ANGLE))
            G.synthesis.input.transform.copy_(torch.from_numpy(m))
            out["transform"] = G.synthesis.input.transform.clone()
            out["img_transform_psi07"] = G.synthesis(out["ws_psi07"], noise_mode="const")
            G.synthesis.input.transform.copy_(torch.eye(3))
    if c is not None:
        out["c"] = c
    return {k: v.numpy() for k, v in out.items()}


@contextlib.contextmanager
def module_sources_left_out():
    """Each record carries the source of its Python module (`module_src`); while pickling, a one-line stub stands
    in for it, so that the fixtures hold no NVIDIA code. Loaders that never run it (ours) read the same records."""
    from torch_utils import persistence

    saved = {cls: cls._orig_module_src for cls in persistence._decorators}
    for cls in saved:
        cls._orig_module_src = f"# the source of NVIDIA's {cls.__bases__[0].__module__} is left out of this test fixture\n"
    try:
        yield
    finally:
        for cls, src in saved.items():
            cls._orig_module_src = src


def save(out: Path, name: str, data: dict, expected: dict) -> None:
    with module_sources_left_out(), open(out / f"{name}.pkl", "wb") as f:
        pickle.dump(data, f)  # as training_loop.py: the default protocol
    np.savez_compressed(out / f"{name}_expected.npz", **expected)
    size = (out / f"{name}.pkl").stat().st_size + (out / f"{name}_expected.npz").stat().st_size
    print(f"wrote {name}.pkl and {name}_expected.npz ({size / 1024:.0f} KiB)")


def equivariance_psnrs(G) -> dict:
    """NVIDIA's metrics/equivariance.py on G for EQ_SAMPLES samples, each kind from torch.manual_seed(EQ_SEED)."""
    from metrics import equivariance, metric_utils

    opts = metric_utils.MetricOptions(G=G, num_gpus=1, rank=0, device=torch.device("cpu"))
    psnrs = {}
    for kind in ("eqt_int", "eqt_frac", "eqr"):
        torch.manual_seed(EQ_SEED)
        psnrs[f"psnr_{kind}"] = np.float64(equivariance.compute_equivariance_metrics(
            opts, num_samples=EQ_SAMPLES, batch_size=EQ_BATCH, **{f"compute_{kind}": True}))
    return dict(eq_seed=np.int64(EQ_SEED), eq_samples=np.int64(EQ_SAMPLES), eq_batch=np.int64(EQ_BATCH),
                eq_translate_max=np.float64(0.125), eq_rotate_max=np.float64(1.0), **psnrs)


def equivariance_parts(G) -> dict:
    """One batch of 2 per kind through NVIDIA's own transform functions: params, both images and the two sums.

    Lets a test feed NVIDIA's images to our formulas and compare the sums closely, apart from the generator.
    """
    from metrics import equivariance as eq

    torch.manual_seed(EQ_SEED + 1)
    M = G.synthesis.input.transform
    with torch.no_grad():
        ws = G.mapping(torch.randn([2, G.z_dim]), None)
        M[:] = torch.eye(3)
        out = dict(parts_orig=G.synthesis(ws, noise_mode="const"))
        for kind in ("eqt_int", "eqt_frac", "eqr"):  # the draws and steps of compute_equivariance_metrics
            if kind == "eqr":
                params = (torch.rand([]) * 2 - 1) * np.pi
                M[:] = eq.rotation_matrix(-params)
                img = G.synthesis(ws, noise_mode="const")
                ref, ref_mask = eq.apply_fractional_rotation(out["parts_orig"], params)
                pseudo, pseudo_mask = eq.apply_fractional_pseudo_rotation(img, params)
                mask = ref_mask * pseudo_mask
                sums = [(ref - pseudo).square() * mask, mask]
            else:
                params = (torch.rand(2) * 2 - 1) * 0.125
                if kind == "eqt_int":
                    params = (params * G.img_resolution).round() / G.img_resolution
                M[:] = torch.eye(3)
                M[:2, 2] = -params
                img = G.synthesis(ws, noise_mode="const")
                shift = eq.apply_integer_translation if kind == "eqt_int" else eq.apply_fractional_translation
                ref, mask = shift(out["parts_orig"], params[0], params[1])
                sums = [(ref - img).square() * mask, mask]
            out[f"parts_{kind}_params"] = params
            out[f"parts_{kind}_img"] = img
            out[f"parts_{kind}_sums"] = torch.stack([x.to(torch.float64).sum() for x in sums])
        M[:] = torch.eye(3)
    return {k: v.numpy() for k, v in out.items()}


def stylegan3_part(out: Path) -> None:
    from gen_images import make_transform
    from training import augment, networks_stylegan2, networks_stylegan3

    configs = {
        # name: (seed, resolution, G kwargs beyond the shared ones)
        "nvidia_stylegan3_t": (1, 32, dict(channel_base=64, channel_max=8, conv_clamp=256)),
        "nvidia_stylegan3_r": (2, 16, dict(channel_base=128, channel_max=16, conv_kernel=1, use_radial_filters=True,
                                           num_layers=8, margin_size=6, conv_clamp=1.0)),
    }
    for name, (seed, res, kwargs) in configs.items():
        torch.manual_seed(seed)
        common = dict(c_dim=0, img_resolution=res, img_channels=3)
        G = networks_stylegan3.Generator(z_dim=16, w_dim=16, mapping_kwargs=dict(num_layers=2), num_fp16_res=4,
                                         magnitude_ema_beta=0.5 ** (32 / (20 * 1e3)), **kwargs, **common).train()
        D = networks_stylegan2.Discriminator(channel_base=64, channel_max=8, num_fp16_res=4, conv_clamp=256,
                                             epilogue_kwargs=dict(mbstd_group_size=4), **common).train()
        augment_pipe = augment.AugmentPipe(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1,
                                           contrast=1, lumaflip=1, hue=1, saturation=1).train().requires_grad_(False)
        augment_pipe.p.copy_(torch.as_tensor(0.2))
        randomize(G, seed)
        G_ema = copy.deepcopy(G).eval()
        randomize(G, seed + 100)  # the training copy differs from the EMA one
        data = snapshot(G_ema, G, D, augment_pipe, dict(class_name="training.dataset.ImageFolderDataset",
                                                        path=f"datasets/tiny-{res}.zip", use_labels=False, max_size=64,
                                                        xflip=False, resolution=res, random_seed=0))
        G_ema = data["G_ema"]
        expected = nvidia_outputs(G_ema, None, make_transform)
        expected.update(equivariance_psnrs(G_ema))
        expected.update(equivariance_parts(G_ema))
        print(name, {k: float(v) for k, v in expected.items() if k.startswith("psnr")})
        save(out, name, data, expected)


def ada_part(out: Path) -> None:
    from training import augment, networks

    torch.manual_seed(3)
    common = dict(c_dim=4, img_resolution=16, img_channels=3)
    G = networks.Generator(z_dim=16, w_dim=16, mapping_kwargs=dict(num_layers=2),
                           synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=4, conv_clamp=256),
                           **common).train()
    D = networks.Discriminator(channel_base=64, channel_max=8, num_fp16_res=4, conv_clamp=256,
                               epilogue_kwargs=dict(mbstd_group_size=4), **common).train()
    augment_pipe = augment.AugmentPipe(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1,
                                       contrast=1, lumaflip=1, hue=1, saturation=1).train().requires_grad_(False)
    randomize(G, 3)
    G_ema = copy.deepcopy(G).eval()
    randomize(G, 103)
    kwargs = dict(class_name="training.dataset.ImageFolderDataset", path="datasets/tiny-cond-16.zip", use_labels=True,
                  max_size=64, xflip=False, resolution=16)
    # stylegan2-ada-pytorch's training_loop.py: training_set_kwargs first, then the modules.
    data = dict(training_set_kwargs=dict(kwargs))
    for key, module in (("G", G), ("D", D), ("G_ema", G_ema), ("augment_pipe", augment_pipe)):
        data[key] = copy.deepcopy(module).eval().requires_grad_(False).cpu()
    c = torch.eye(4)[torch.tensor([0, 1, 2, 3])]  # one label per latent
    # ADA's fp16 blocks compute in float16 even on the CPU unless told otherwise; the expected images are float32.
    save(out, "nvidia_ada_conditional", data, nvidia_outputs(data["G_ema"], c, None, force_fp32=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stylegan3-src", type=Path, help="a checkout of NVlabs/stylegan3")
    parser.add_argument("--ada-src", type=Path, help="a checkout of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests" / "fixtures")
    parser.add_argument("--part", choices=["stylegan3", "ada"], help=argparse.SUPPRESS)  # internal: one subprocess
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.part is not None:
        src = args.stylegan3_src if args.part == "stylegan3" else args.ada_src
        sys.path.insert(0, str(src.resolve()))
        install_shims()
        torch.set_num_threads(1)
        (stylegan3_part if args.part == "stylegan3" else ada_part)(args.out)
        return
    if args.stylegan3_src is None and args.ada_src is None:
        parser.error("give --stylegan3-src and/or --ada-src")
    for part, src in (("stylegan3", args.stylegan3_src), ("ada", args.ada_src)):
        if src is not None:
            flag = "--stylegan3-src" if part == "stylegan3" else "--ada-src"
            subprocess.run([sys.executable, __file__, "--part", part, flag, str(src), "--out", str(args.out)], check=True)


if __name__ == "__main__":
    main()
