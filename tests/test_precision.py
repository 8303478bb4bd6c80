"""--precision: bf16 changes the arithmetic (close, not equal), is kept apart in fingerprints, and fp32 turns
TF32 off inside the call and restores the global switches after it."""

import pytest
import torch

from stylegan_core import InputError
from stylegan_metrics import fid
from stylegan_metrics.networks.registry import build_feature_extractor
from stylegan_metrics.precision import precision_context
from helpers import Colours, tiny_generator


class ConvFeatures(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return self.conv(x.float() / 255).relu().mean(dim=(2, 3))


def test_bf16_features_are_close_but_not_equal_and_fingerprinted_apart():
    images = torch.randint(0, 256, (20, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    fp32 = build_feature_extractor(ConvFeatures(), device=torch.device("cpu"))
    bf16 = build_feature_extractor(ConvFeatures(), device=torch.device("cpu"), precision="bf16")
    a, b = fp32(images), bf16(images)
    assert b.dtype == torch.float32 and not torch.equal(a, b)
    torch.testing.assert_close(b, a, rtol=2e-2, atol=2e-2)
    assert bf16.fingerprint == fp32.fingerprint + "@bf16"


def test_statistics_of_another_precision_are_refused():
    G = tiny_generator(16)
    ref = fid(G, _stats(G), num_gen=16, features=ConvFeatures(), device="cpu", progress=False)
    assert ref.params["precision"] == "fp32"
    with pytest.raises(InputError, match="other ConvFeatures weights"):
        fid(G, _stats(G), num_gen=16, features=ConvFeatures(), device="cpu", progress=False, precision="bf16")
    with pytest.raises(InputError, match="precision must be one of fp32, tf32, bf16"):
        build_feature_extractor(ConvFeatures(), device=torch.device("cpu"), precision="fp16")


def _stats(G):
    from helpers import feature_stats
    from stylegan_metrics.engine.sampling import generate_batches
    from stylegan_metrics.stats import ReferenceStats

    ext = build_feature_extractor(ConvFeatures(), device=torch.device("cpu"))
    acc = feature_stats(ext, (b.images for b in generate_batches(G, 32, batch_size=16, seed=5, device=torch.device("cpu"))))
    return ReferenceStats.from_accumulator(acc, ext.name, ext.fingerprint)


def test_fp32_turns_tf32_off_inside_and_restores_outside():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = True  # PyTorch's own default for convolutions
    try:
        with precision_context("fp32", "cuda"):
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        with precision_context("tf32", "cuda"):
            assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


class Recorder(torch.nn.Module):
    """Channel means of uint8 images; keeps the images it was given."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(x.clone())
        return x.float().mean(dim=(2, 3)) / 255


def test_generator_runs_at_the_feature_metrics_precision_never_for_ls_or_ppl():
    import numpy as np

    from stylegan_core.data.images import to_uint8
    from stylegan_metrics import ReferenceStats, evaluate
    from stylegan_metrics.engine.sampling import latents, map_latents, noise_seeds, synthesize

    G = tiny_generator(16)
    x = np.random.default_rng(0).uniform(size=(50, 3))
    ref = ReferenceStats(mu=x.mean(0), sigma=np.cov(x, rowvar=False), n=50, features="Recorder")
    kw = dict(data=ref, classifier=Colours(), attributes=3, similarity=lambda a, b: (a - b).square().mean((1, 2, 3)),
              batch_size=32, device="cpu", progress=False)
    passes = []
    G.synthesis.register_forward_hook(lambda module, args, out: passes.append(out.shape[0]))
    fp32, bf16 = Recorder(), Recorder()
    a = evaluate(G, ["fid32_full", "ls32", "ppl8_wend"], features=fp32, precision="fp32", **kw)
    b = evaluate(G, ["fid32_full", "ls32", "ppl8_wend"], features=bf16, precision="bf16", **kw)
    assert passes == [32, 16, 32, 32, 16]  # fp32: FID and LS share a pass, then PPL; bf16: FID, LS apart, PPL
    assert [r.params.get("generator_precision") for r in b] == ["bf16", "fp32", None]
    with torch.inference_mode():
        ws = map_latents(G, latents(0, 0, 32, G.z_dim))
        expected = to_uint8(synthesize(G, ws, noise_seeds(0, 0, 32), precision="bf16").float())
    seen16, seen32 = torch.cat(bf16.seen), torch.cat(fp32.seen)  # the CPU's 16-image slices
    assert torch.equal(seen16, expected) and not torch.equal(seen32, expected)
    assert b[0].value != a[0].value
    assert b[1].results == a[1].results and b[2].results == a[2].results  # LS and PPL: fp32 whatever --precision
