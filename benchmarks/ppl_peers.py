"""How the PPL benchmarks run each tool: ours, and torch-fidelity's and torchmetrics' PPL wired to the same
generator, z0/z1 tables, per-pair noise and LPIPS files (bench_ppl.py's docstring lists what still differs)."""

from __future__ import annotations

import inspect
import os
import shutil
import types
from pathlib import Path

VGG_FILE, TF_LPIPS_FILE = "vgg16-397923af.pth", "weights-vgg16-lpips.pth"


def lpips_heads_path() -> Path:
    import lpips

    return Path(lpips.__file__).parent / "weights" / "v0.1" / "vgg.pth"


def unit_latents(seed: int, num: int, dim: int):
    """Our per-index z0, z1 tables (streams ppl_z0, ppl_z1 of stylegan_metrics.engine.sampling.STREAMS),
    unit-normalized."""
    from stylegan_metrics.formulas.paths import normalize
    from stylegan_metrics.engine.sampling import STREAMS, latents

    return [normalize(latents(seed, 0, num, dim, stream=s)) for s in (STREAMS["ppl_z0"], STREAMS["ppl_z1"])]


def peer_generator_module(G, seed: int, num: int, shared_latents: bool):
    """nn.Module z [2n, z_dim] (two halves: e0, e1) -> images [2n, 3, H, W] float32 in [0, 255] (unclamped), the
    halves' pair i sharing noise seed i of our per-index table; `sample(num)` gives z0 then z1 when shared."""
    import torch

    from stylegan_metrics.engine.sampling import noise_seeds

    class PeerGenerator(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.G = G
            self.z_size = G.z_dim
            self.pairs_done = 0
            self.max_pairs = 0  # the largest batch of pairs one call got: the batch size that actually ran
            self.shared = unit_latents(seed, num, G.z_dim) if shared_latents else None
            self.sample_calls = 0
            self.torch_rng = torch.Generator().manual_seed(seed)

        def sample(self, num_samples: int) -> torch.Tensor:  # torchmetrics' protocol
            self.sample_calls += 1
            if self.shared is not None:
                return self.shared[self.sample_calls - 1][:num_samples].clone()
            return torch.randn(num_samples, self.z_size, generator=self.torch_rng)

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            n = z.shape[0] // 2
            seeds = noise_seeds(seed, self.pairs_done, n)
            self.pairs_done += n
            self.max_pairs = max(self.max_pairs, n)
            ws = self.G.mapping(z, None)
            images = self.G.synthesis(ws, noise_mode="random", noise_seeds=torch.cat([seeds, seeds]))
            return (images.float() + 1) * 127.5

    return PeerGenerator()


def weights_match(module, vgg_path: Path) -> str:
    """'ok' when a peer LPIPS module's trunk (net.slice*) and heads (lin*) equal our VGG16 file and lpips' v0.1
    heads, else what differs."""
    import torch

    slices = [(1, range(0, 4)), (2, range(4, 9)), (3, range(9, 16)), (4, range(16, 23)), (5, range(23, 30))]
    slice_of = {i: k for k, layers in slices for i in layers}  # vgg16.features index -> lpips' slice{k}
    trunk = {}
    for key, value in torch.load(vgg_path, map_location="cpu", weights_only=True).items():
        parts = key.split(".")
        if parts[0] == "features" and int(parts[1]) in slice_of:
            trunk[f"slice{slice_of[int(parts[1])]}.{parts[1]}.{parts[2]}"] = value
    heads = torch.load(lpips_heads_path(), map_location="cpu", weights_only=True)
    state = module.state_dict()
    expected = {f"net.{k}": v for k, v in trunk.items()} | heads
    bad = [k for k, v in expected.items() if k not in state or not torch.equal(state[k].cpu(), v)]
    return "ok" if not bad else f"MISMATCH ({len(bad)} tensors, e.g. {bad[0]})"


def run_ours(args, G, sampling: str) -> dict:
    from stylegan_metrics import ppl

    vgg = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints" / VGG_FILE
    device = getattr(args, "device", "cpu")  # run_all.py's --device; this script's CLI: CPU
    res = ppl(G, space="z", sampling=sampling, num_samples=args.num, epsilon=args.epsilon, crop=False,
              batch_size=args.batch, seed=args.seed, weights=vgg, device=device, progress=False)
    return dict(value=res.value, raw=res.details["distance"].to_numpy(),
                batch=args.batch, weights=f"file sha256 {res.params['similarity_fingerprint'].split(':')[1]}...",
                settings=f"space=z, sampling={sampling}, crop=False")


def run_torch_fidelity(args, G) -> dict:
    import numpy as np
    import torch
    import torch_fidelity
    import torch_fidelity.metric_ppl as tf_ppl

    cuda = getattr(args, "device", "cpu").startswith("cuda")  # run_all.py's --device; this script's CLI: CPU
    gen = peer_generator_module(G, args.seed, args.num, args.latents == "shared")
    captured, raw = {}, []
    make_similarity = tf_ppl.create_sample_similarity

    def create_sample_similarity(*a, **k):  # keep the module (weights check) and record its raw distances
        module = make_similarity(*a, **k)
        captured["lpips"] = module
        module.register_forward_hook(lambda m, inp, out: raw.append(out.detach().reshape(-1).cpu().double()
                                                                    / args.epsilon ** 2))
        return module

    tf_ppl.create_sample_similarity = create_sample_similarity
    percentile = np.percentile
    if "interpolation" not in inspect.signature(percentile).parameters:  # numpy >= 2.4 dropped the old keyword
        tf_ppl.np = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
        tf_ppl.np.percentile = lambda a, q, interpolation="linear", **k: percentile(a, q, method=interpolation, **k)
    if gen.shared is not None:
        tables = iter(gen.shared)
        tf_ppl.sample_random = lambda rng, shape, z_type: next(tables)[:shape[0]].clone()
    wrapped = torch_fidelity.GenerativeModelModuleWrapper(gen, G.z_dim, "normal", 0)
    out = torch_fidelity.calculate_metrics(
        input1=wrapped, input1_model_num_samples=args.num, ppl=True, cuda=cuda, batch_size=args.batch,
        ppl_epsilon=args.epsilon, ppl_z_interp_mode="slerp_unit", ppl_sample_similarity="lpips-vgg16",
        ppl_sample_similarity_resize=None, ppl_sample_similarity_dtype="float32", ppl_discard_percentile_lower=1,
        ppl_discard_percentile_higher=99, ppl_reduction="mean", rng_seed=args.seed, verbose=False, cache=False)
    return dict(value=out["perceptual_path_length_mean"], raw=torch.cat(raw).numpy().astype(np.float64),
                batch=gen.max_pairs, lpips=captured["lpips"],
                settings="slerp_unit, t=0, resize=None, dtype=float32, discard 1/99")


def run_torchmetrics(args, G) -> dict:
    import torch
    from torchmetrics.image import PerceptualPathLength

    gen = peer_generator_module(G, args.seed, args.num, args.latents == "shared")
    metric = PerceptualPathLength(num_samples=args.num, batch_size=args.batch, interpolation_method="slerp_unit",
                                  epsilon=args.epsilon, resize=None, lower_discard=0.01, upper_discard=0.99,
                                  sim_net="vgg").to(getattr(args, "device", "cpu"))
    raw = []
    metric.net.register_forward_hook(lambda m, inp, out: raw.append(out.detach().reshape(-1).cpu().double()
                                                                    / args.epsilon ** 2))
    metric.update(gen)
    mean, _std, _kept = metric.compute()
    return dict(value=float(mean), raw=torch.cat(raw).numpy(), batch=gen.max_pairs,
                lpips=metric.net, settings="slerp_unit, t=0, resize=None, discard q0.01/q0.99 'lower'")


def prepare_weights(work: Path) -> Path:
    """$TORCH_HOME for the workers: our seeded VGG16 and torch-fidelity's LPIPS heads file in hub/checkpoints."""
    import torch

    from stylegan_metrics.testing import write_vgg16_weights

    checkpoints = work / "torch_home" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    write_vgg16_weights(checkpoints / VGG_FILE, seed=0)
    shutil.copyfile(lpips_heads_path(), checkpoints / TF_LPIPS_FILE)
    import torchmetrics.functional.image.lpips as tm_lpips

    tm_heads = torch.load(Path(tm_lpips.__file__).parent / "lpips_models" / "vgg.pth", map_location="cpu",
                          weights_only=True)
    ours = torch.load(lpips_heads_path(), map_location="cpu", weights_only=True)
    if tm_heads.keys() != ours.keys() or not all(torch.equal(tm_heads[k], ours[k]) for k in ours):
        print("WARNING: torchmetrics' shipped LPIPS-VGG heads differ from the lpips package's v0.1 heads")
    return work / "torch_home"
