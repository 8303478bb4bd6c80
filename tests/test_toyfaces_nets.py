"""The `toyfaces` feature network, `toyfaces-lpips` similarity, and the bundled networks' quality bar."""

import json

import numpy as np
import pytest
import torch

from stylegan_core.data.celeba import CELEBA_ATTRIBUTES
from stylegan_core.data.toyfaces import render_toyfaces
from stylegan_metrics.networks.classifier import AttributeClassifier, attribute_accuracy, save_classifier
from stylegan_metrics.networks.registry import build_feature_extractor, build_similarity
from stylegan_metrics.networks.toyfaces_nets import (ToyfacesFeatures, ToyfacesLPIPS, load_toyfaces_classifier,
                                            load_toyfaces_generator)
from stylegan_metrics.networks.weights import sha256_of


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    return AttributeClassifier(["a", "b", "c"], input_resolution=16, channels=(4, 6, 8)).eval()


def test_features_are_stage_means(classifier):
    images = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    x = images.float() / 127.5 - 1
    expected, f = [], classifier.features
    for k in range(3):  # conv, act, conv, act | pool
        x = f[5 * k + 3](f[5 * k + 2](f[5 * k + 1](f[5 * k](x))))
        expected.append(x.mean(dim=(2, 3)))
        x = f[5 * k + 4](x)
    out = ToyfacesFeatures(classifier)(images)
    assert out.shape == (5, 4 + 6 + 8)
    torch.testing.assert_close(out, torch.cat(expected, 1))


def test_lpips_matches_hand_computation(classifier):
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(4, 3, 12, 12, generator=g) * 2 - 1, torch.rand(4, 3, 12, 12, generator=g) * 2 - 1
    lp = ToyfacesLPIPS(classifier)
    d = lp(a, b)
    fa, fb = classifier.stage_outputs(a, resize=False), classifier.stage_outputs(b, resize=False)
    for n in range(4):
        total = 0.0
        for x, y in zip(fa, fb):
            x, y = x[n].double().numpy(), y[n].double().numpy()  # [C, h, w]
            x = x / (np.sqrt((x ** 2).sum(0, keepdims=True)) + 1e-10)
            y = y / (np.sqrt((y ** 2).sum(0, keepdims=True)) + 1e-10)
            total += ((x - y) ** 2).sum(0).mean()
        assert d[n].item() == pytest.approx(total, rel=1e-5)
    assert torch.all(lp(a, a) == 0)
    torch.testing.assert_close(lp(b, a), d)
    assert fa[0].shape[-1] == 12  # ran at the images' own size, no resize to 16


def test_registry_uses_given_classifier_file(tmp_path, classifier):
    path = save_classifier(classifier, tmp_path / "c.pt", [1.0, 1.0, 1.0], held_out=1)
    ext = build_feature_extractor("toyfaces", weights=path, device=torch.device("cpu"))
    assert ext.fingerprint == f"toyfaces:{sha256_of(path)[:16]}"
    images = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    torch.testing.assert_close(ext(images), ToyfacesFeatures(classifier)(images))
    sim = build_similarity("toyfaces-lpips", weights=path, device=torch.device("cpu"))
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(sim(x, x.flip(0)), ToyfacesLPIPS(classifier)(x, x.flip(0)))


@pytest.fixture(scope="module")
def bundled_accuracy():
    model = load_toyfaces_classifier()
    assert model.attributes == CELEBA_ATTRIBUTES
    images, labels = render_toyfaces(2000, resolution=model.input_resolution, seed=2)  # a world it never saw
    acc = attribute_accuracy(model, torch.from_numpy(images), torch.from_numpy(labels).float())
    return acc, np.maximum(labels.mean(0), 1 - labels.mean(0))


def test_bundled_classifier_meets_its_accuracy_bar(bundled_accuracy):
    """The accuracy bar, on a world the classifier never saw: mean >= 0.95, every attribute >= 0.85 and above its
    majority rate (docs/demo.md: mean 0.984, worst 0.946)."""
    acc, majority = bundled_accuracy
    assert acc.mean() >= 0.95 and acc.min() >= 0.85
    assert np.all(1 - acc <= 0.5 * (1 - majority))  # learned: at most half the errors of the majority label


def test_bundled_generator_protocol():
    G = load_toyfaces_generator()
    assert (G.img_resolution, G.img_channels) == (32, 3)
    ws = G.mapping(torch.randn(2, G.z_dim), None)
    assert ws.shape == (2, G.num_ws, G.w_dim)
    img = G.synthesis(ws, noise_mode="const")
    assert img.shape == (2, 3, 32, 32) and torch.isfinite(img).all()


def test_cli_toyfaces_networks_agree_with_the_api(tmp_path, metrics_home):
    from click.testing import CliRunner

    from stylegan_core.data.toyfaces import write_toyfaces
    from stylegan_metrics import fid, ppl
    from stylegan_core.data.toyfaces import ToyFaces
    from stylegan_metrics.reference import compute_reference_stats
    from stylegan_metrics.stats import ReferenceStats
    from stylegan_metrics.networks.toyfaces_nets import GENERATOR_FILE, bundled_path
    from stylegan_metrics_cli.main import main

    runner = CliRunner()
    write_toyfaces(tmp_path / "real.zip", 48, resolution=32, progress=False)
    ref = tmp_path / "ref.npz"
    r = runner.invoke(main, ["stats", "--data", str(tmp_path / "real.zip"), "--features", "toyfaces", "--out", str(ref),
                             "--no-progress"])
    assert r.exit_code == 0, r.output
    direct = compute_reference_stats(ToyFaces(48, resolution=32), features="toyfaces", progress=False, cache=False)
    saved = ReferenceStats.load(ref)
    np.testing.assert_allclose(saved.mu, direct.mu, rtol=1e-12)  # PNG round trip is lossless
    np.testing.assert_allclose(saved.sigma, direct.sigma, rtol=1e-10, atol=1e-14)

    ckpt = str(bundled_path(GENERATOR_FILE))
    G = load_toyfaces_generator()
    out = tmp_path / "m.jsonl"
    r = runner.invoke(main, ["fid", "--ckpt", ckpt, "--data", str(ref), "--features", "toyfaces", "--num", "32",
                             "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["ppl", "--ckpt", ckpt, "--similarity", "toyfaces-lpips", "--num", "8", "--space", "both",
                             "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    api_fid = fid(G, saved, num_gen=32, features="toyfaces", progress=False).value
    api_ppl = ppl(G, space="both", num_samples=8, similarity="toyfaces-lpips", progress=False).results
    assert lines[0]["results"]["fid32_full_unbiased"] == pytest.approx(api_fid, rel=1e-12)
    assert lines[1]["results"] == pytest.approx(api_ppl, rel=1e-12)


def test_layer_groups_follow_the_paper_split():
    from helpers import tiny_generator

    from stylegan_metrics.figures import layer_groups

    assert layer_groups(tiny_generator(32)) == {"coarse": [0, 1, 2, 3], "middle": [4, 5], "fine": [6, 7]}
    g128 = tiny_generator(128, channel_base=64, channel_max=4)  # the paper: 4-8 coarse, 16-32 middle, 64+ fine
    assert layer_groups(g128) == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6, 7], "fine": [8, 9, 10, 11]}


def test_toyfaces_reference_is_cached_and_reused(metrics_home, monkeypatch, classifier, tmp_path):
    from stylegan_core.data.toyfaces import ToyFaces
    from stylegan_metrics.reference import compute_reference_stats

    path = save_classifier(classifier, tmp_path / "c.pt", [1.0] * 3, held_out=1)
    ext = build_feature_extractor("toyfaces", weights=path, device=torch.device("cpu"))
    first = compute_reference_stats(ToyFaces(20, resolution=16), features=ext, batch_size=8, progress=False)
    rendered, render = [], ToyFaces.__getitem__
    monkeypatch.setattr(ToyFaces, "__getitem__", lambda self, i: rendered.append(i) or render(self, i))
    second = compute_reference_stats(ToyFaces(20, resolution=16), features=ext, batch_size=8, progress=False)
    assert rendered == [0]  # the first image, to learn the size; the rest comes from the cache
    np.testing.assert_array_equal(first.mu, second.mu)
    assert first.n == 20
    assert len(list((metrics_home / "stats").glob("toyfaces-*.npz"))) == 1
    other = compute_reference_stats(ToyFaces(20, resolution=16, seed=1), features=ext, batch_size=8, progress=False)
    assert not np.array_equal(other.mu, first.mu)  # another world is another cache entry
    assert len(list((metrics_home / "stats").glob("toyfaces-*.npz"))) == 2


def test_reference_from_other_weights_is_refused(tmp_path, metrics_home, classifier):
    from helpers import tiny_generator

    from stylegan_core.errors import InputError
    from stylegan_metrics import fid
    from stylegan_core.data.toyfaces import ToyFaces
    from stylegan_metrics.reference import compute_reference_stats
    from stylegan_metrics.stats import ReferenceStats

    a = save_classifier(classifier, tmp_path / "a.pt", [1.0] * 3, held_out=1)
    torch.manual_seed(5)
    other = AttributeClassifier(["a", "b", "c"], input_resolution=16, channels=(4, 6, 8))
    b = save_classifier(other, tmp_path / "b.pt", [1.0] * 3, held_out=1)
    ext = build_feature_extractor("toyfaces", weights=a, device=torch.device("cpu"))
    ref = compute_reference_stats(ToyFaces(24, resolution=16), features=ext, progress=False, cache=False).save(
        tmp_path / "ref.npz")
    assert ReferenceStats.load(ref).fingerprint == ext.fingerprint
    G = tiny_generator(16)
    assert fid(G, ref, num_gen=20, features="toyfaces", weights=a, progress=False).value > 0
    with pytest.raises(InputError, match="other toyfaces weights"):
        fid(G, ref, num_gen=20, features="toyfaces", weights=b, progress=False)
