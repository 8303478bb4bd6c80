"""DINOv2 feature networks against Meta's own code (tests/fixtures/dinov2_tiny.npz, written by
make_dinov2_fixture.py): outputs, EDM2's and dgm-eval's preprocessing, Meta's key layouts, the registry and weights."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan_core.errors import InputError
from stylegan_metrics.networks import dinov2 as D
from stylegan_metrics.networks.registry import FEATURE_NETWORKS, build_feature_extractor
from stylegan_metrics.networks.resizing import resize_rule
from stylegan_metrics.networks.weights import STANDARD_WEIGHTS, WeightsError, WeightsSpec, resolve_weights
from stylegan_metrics.testing import dinov2_state_dict, write_dinov2_weights
from helpers import tiny_dinov2_state

FIXTURE = Path(__file__).parent / "fixtures" / "dinov2_tiny.npz"
SIZES = ("32", "64", "40x56")
PROBES = ((518, 518), (224, 280), (98, 70))
WIDTHS = {"vit-s14": 384, "vit-b14": 768, "vit-l14": 1024, "vit-g14": 1536}
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def meta() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return {k: data[k] for k in data.files}


def tiny_state(meta: dict, model: str) -> dict[str, torch.Tensor]:
    return tiny_dinov2_state(meta, model)


def probe(h: int, w: int) -> torch.Tensor:
    """make_dinov2_fixture.probe."""
    return (torch.sin(torch.arange(3 * h * w, dtype=torch.float64) * 0.37) * 2).float().reshape(1, 3, h, w)


def relative_error(ours: torch.Tensor, theirs: np.ndarray) -> float:
    return float(np.abs(ours.numpy() - theirs).max() / np.abs(theirs).max())


def test_fixture_is_small_and_from_meta(meta):
    assert FIXTURE.stat().st_size < 700_000
    assert len(str(meta["meta_commit"])) == 40


@pytest.mark.parametrize("model", ["mlp", "swiglu"])
@pytest.mark.parametrize("resize", D.RESIZE_MODES)
def test_features_equal_metas(meta, model, resize):
    """Meta's DinoVisionTransformer (hub configuration, tiny width) on EDM2's / dgm-eval's preprocessing of images of
    three sizes: our module loaded from the same state dict gives its CLS outputs to 1e-5 relative."""
    state = tiny_state(meta, model)
    assert D.architecture_of(state) == dict(width=64, depth=2, ffn=model)
    features = D.DinoV2Features(D.load_dinov2(state), resize=resize)
    with torch.inference_mode():
        for size in SIZES:
            ours = features(torch.from_numpy(meta[f"images_{size}"]))
            assert relative_error(ours, meta[f"cls_{model}_{resize}_{size}"]) <= 1e-5, size


@pytest.mark.parametrize("model", ["mlp", "swiglu"])
def test_position_embeddings_follow_metas_rule(meta, model):
    """Float inputs on patch grids 37 x 37 (the stored embeddings), 16 x 20 and 7 x 5 (Meta's bicubic with scale
    factors (n + 0.1) / 37); another offset would be another network, by far more than the tolerance."""
    vit = D.load_dinov2(tiny_state(meta, model))
    with torch.inference_mode():
        for h, w in PROBES:
            assert relative_error(vit(probe(h, w)), meta[f"cls_{model}_probe_{h}x{w}"]) <= 1e-5, (h, w)
        pos = vit.pos_embed[:, 1:].reshape(1, 37, 37, 64).permute(0, 3, 1, 2)
        by_size = F.interpolate(pos, size=(16, 20), mode="bicubic").permute(0, 2, 3, 1).reshape(1, 320, 64)
        assert (vit.positions(16, 20, torch.float32)[:, 1:] - by_size).abs().max() > 1e-3


@pytest.mark.parametrize("resize", D.RESIZE_MODES)
def test_preprocessing_equals_edm2(meta, resize):
    """The preprocessed [N, 3, 224, 224] input equals the fixture's (EDM2's rule, PIL for 'pil'): every 7th row and
    column, and each channel's sum; 'torch' also equals EDM2's expression evaluated here."""
    for size in SIZES:
        images = torch.from_numpy(meta[f"images_{size}"])
        x = D.preprocess(images, resize=resize)
        assert x.dtype == torch.float32 and x.shape == (images.shape[0], 3, 224, 224)
        torch.testing.assert_close(x[:, :, ::7, ::7], torch.from_numpy(meta[f"pre_{resize}_{size}_sub"]),
                                   rtol=0, atol=1e-6)
        np.testing.assert_allclose(x.double().sum(dim=(2, 3)).numpy(), meta[f"pre_{resize}_{size}_sum"], atol=1e-3)
        if resize == "torch":
            edm2 = F.interpolate(images.to(torch.float32), size=(224, 224), mode="bicubic", antialias=True)
            edm2 = edm2.to(torch.float32) / 255
            edm2 = edm2 - torch.as_tensor([0.485, 0.456, 0.406], dtype=torch.float32).reshape(1, -1, 1, 1)
            edm2 = edm2 / torch.as_tensor([0.229, 0.224, 0.225], dtype=torch.float32).reshape(1, -1, 1, 1)
            assert torch.equal(x, edm2)
    with pytest.raises(InputError, match="uint8"):
        D.preprocess(torch.zeros(1, 3, 8, 8), resize=resize)
    with pytest.raises(InputError, match="resize mode"):
        D.preprocess(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), resize="area")


@pytest.mark.parametrize("arch", list(WIDTHS))
def test_metas_hub_layouts_load_strictly(meta, arch):
    """Meta's hub backbones' keys and shapes (built by Meta's code on the meta device) load strictly into ours,
    which infers width, depth and FFN from them and gives [N, D] (on the meta device: ViT-g alone is 4.4 GB)."""
    shapes = json.loads(str(meta[f"shapes:{arch}"]))
    on_meta = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    assert D.architecture_of(on_meta) == D.ARCHS[arch]
    with torch.device("meta"):
        ours = {k: list(v.shape) for k, v in D.DinoViT(**D.ARCHS[arch]).state_dict().items()}
    assert ours == shapes
    features = D.DinoV2Features(D.load_dinov2(on_meta))
    assert features(torch.empty(3, 3, 40, 56, dtype=torch.uint8, device="meta")).shape == (3, WIDTHS[arch])
    missing = dict(on_meta)
    missing.pop("mask_token")
    with pytest.raises(InputError, match="mask_token"):
        D.load_dinov2(missing)


@pytest.mark.parametrize("arch", ["vit-s14", "vit-b14"])
def test_seeded_full_size_weights_run(arch):
    state = dinov2_state_dict(arch, seed=1)
    assert D.architecture_of(state) == D.ARCHS[arch]
    features = D.DinoV2Features(D.load_dinov2(state))
    with torch.inference_mode():
        images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        out = features(images)
    assert out.shape == (2, WIDTHS[arch]) and torch.isfinite(out).all()


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory) -> Path:
    return write_dinov2_weights(tmp_path_factory.mktemp("dinov2") / "my-vits14.pth", "vit-s14", seed=3)


def test_registry_builds_with_weights_file(small_weights):
    """Both resize modes by name with --weights: [N, 384], the module's own features, fingerprints that name the
    mode and the file's hash, and resize rules recorded for reference statistics."""
    images = torch.randint(0, 256, (3, 3, 48, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    fingerprints, vit = set(), D.load_dinov2(dinov2_state_dict("vit-s14", seed=3))
    for name, resize in (("dinov2-vit-s14", "torch"), ("dinov2-vit-s14-pil", "pil")):
        extractor = build_feature_extractor(name, weights=small_weights, device=CPU)
        out = extractor(images)
        assert out.shape == (3, 384)
        direct = D.DinoV2Features(vit, resize=resize)
        with torch.inference_mode():
            torch.testing.assert_close(out, direct(images), rtol=1e-5, atol=1e-5)
        assert extractor.fingerprint.startswith(f"{name}:") and len(extractor.fingerprint) == len(name) + 17
        fingerprints.add(extractor.fingerprint)
        assert ("PIL" in resize_rule(name)) == (resize == "pil") and "224x224" in resize_rule(name)
    assert len(fingerprints) == 2
    assert {f"dinov2-vit-{s}14{p}" for s in "sblg" for p in ("", "-pil")} <= set(FEATURE_NETWORKS)


def test_registry_refuses_other_architectures(small_weights, meta, tmp_path):
    with pytest.raises(InputError, match=r"dinov2-vit-b14 is \{'width': 768"):
        build_feature_extractor("dinov2-vit-b14", weights=small_weights, device=CPU)
    tiny = tmp_path / "tiny.pth"
    torch.save(tiny_state(meta, "mlp"), tiny)
    with pytest.raises(InputError, match="'width': 64"):
        build_feature_extractor("dinov2-vit-l14-pil", weights=tiny, device=CPU)
    partial = tmp_path / "partial.pth"
    state = dinov2_state_dict("vit-s14")
    del state["blocks.3.ls2.gamma"]
    torch.save(state, partial)
    with pytest.raises(InputError, match="blocks.3.ls2.gamma"):
        build_feature_extractor("dinov2-vit-s14", weights=partial, device=CPU)


def test_standard_files_are_metas_with_recorded_hashes(tmp_path, monkeypatch):
    """Meta's own file names and URLs with a whole SHA-256 each: a cached copy under torch.hub's name (as
    torch.hub.load leaves it) is found and its hash checked; offline, the error names the URL."""
    monkeypatch.setenv("STYLEGAN_METRICS_HOME", str(tmp_path / "sm"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("STYLEGAN_METRICS_OFFLINE", "1")
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("tests never download"))
    for size in "sblg":
        spec = STANDARD_WEIGHTS[f"dinov2-vit-{size}14"]
        assert spec.filename == f"dinov2_vit{size}14_pretrain.pth" and len(spec.sha256) == 64
        assert spec.url == f"https://dl.fbaipublicfiles.com/dinov2/dinov2_vit{size}14/{spec.filename}"
    spec = STANDARD_WEIGHTS["dinov2-vit-l14"]
    with pytest.raises(WeightsError) as info:
        build_feature_extractor("dinov2-vit-l14-pil", device=CPU)
    assert spec.url in str(info.value) and spec.filename in str(info.value)
    hub = tmp_path / "torch" / "hub" / "checkpoints" / spec.filename
    hub.parent.mkdir(parents=True)
    torch.save({"cls_token": torch.zeros(1, 1, 1024)}, hub)
    with pytest.raises(WeightsError, match=f"expected {spec.sha256} \\(recorded for it\\)"):
        resolve_weights("dinov2-vit-l14")
    own = WeightsSpec("x", "x_pretrain.pth", "https://example.invalid/x_pretrain.pth",
                      hashlib.sha256(hub.read_bytes()).hexdigest())
    (tmp_path / "sm" / "weights").mkdir(parents=True)
    (tmp_path / "sm" / "weights" / own.filename).write_bytes(hub.read_bytes())
    assert resolve_weights(own) == tmp_path / "sm" / "weights" / own.filename


def test_spec_hash_rules():
    with pytest.raises(ValueError):
        WeightsSpec("x", "x_pretrain.pth", "https://example.invalid/x")  # no hash anywhere
    with pytest.raises(ValueError):
        WeightsSpec("x", "x_pretrain.pth", "https://example.invalid/x", "abc123")  # not a whole SHA-256
    with pytest.raises(ValueError):
        WeightsSpec("x", "x_pretrain.bin", "https://example.invalid/x", "0" * 64)
    assert WeightsSpec("x", "x-0123abcd.pth", "u").sha256_prefix == "0123abcd"
    assert WeightsSpec("x", "x.pth", "u", "ab" * 32).sha256_prefix == "ab" * 32
