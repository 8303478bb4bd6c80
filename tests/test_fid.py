"""FID end to end: reference statistics vs torch-fidelity, batch-size invariance, the blur sanity check, cache."""

import importlib

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageFilter

from stylegan_core import InputError, save_checkpoint
from stylegan_metrics import ReferenceStats, compute_reference_stats, fid
from stylegan_metrics.engine.sampling import generate_batches, latents, noise_seeds
from stylegan_metrics_cli.main import main
from helpers import tiny_generator, write_disc_images


class MeanColorFeatures(torch.nn.Module):
    """A user feature network: uint8 images -> per-channel means and quadrant means (15-d)."""

    def forward(self, x):
        x = x.float() / 255
        quads = torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)  # [N, 12]
        return torch.cat([x.mean(dim=(2, 3)), quads], dim=1)


def test_latents_depend_only_on_seed_and_index():
    full = latents(5, 0, 600, 8)
    assert torch.equal(latents(5, 250, 100, 8), full[250:350])  # spans a block boundary
    assert not torch.equal(latents(6, 0, 10, 8), full[:10])
    assert torch.equal(noise_seeds(5, 3, 4), noise_seeds(5, 0, 7)[3:])


def test_generated_images_do_not_depend_on_batch_size():
    G = tiny_generator(16)
    with torch.no_grad():
        for layer in G.synthesis.layers:
            layer.noise.strength.fill_(0.5)  # make the random noise matter
    cpu = torch.device("cpu")
    a = torch.cat([b.images for b in generate_batches(G, 20, batch_size=7, seed=1, device=cpu)])
    b = torch.cat([b.images for b in generate_batches(G, 20, batch_size=20, seed=1, device=cpu)])
    assert torch.equal(a, b)
    c = torch.cat([b.images for b in generate_batches(G, 20, batch_size=20, seed=2, device=cpu)])
    assert not torch.equal(a, c)


@pytest.mark.slow
def test_reference_stats_equal_torch_fidelity_extractor(tmp_path, inception_weights, metrics_home):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    folder = write_disc_images(tmp_path / "real", 12, size=16)
    ours = compute_reference_stats(folder, weights=inception_weights, batch_size=5, device="cpu", progress=False)
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(inception_weights))
    images = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB")).transpose(2, 0, 1).copy())
                          for p in sorted(folder.glob("*.png"))])
    with torch.no_grad():
        feats = net(images)[0].double().numpy()
    assert feats.std() > 1e-3  # the test weights give non-degenerate features
    assert ours.n == 12 and ours.features == "inception-v3"
    np.testing.assert_allclose(ours.mu, feats.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours.sigma, np.cov(feats, rowvar=False), rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_fid_same_for_batch_sizes_7_and_32(tmp_path, inception_weights, metrics_home):
    G = tiny_generator(16, seed=2)
    ref = compute_reference_stats(write_disc_images(tmp_path / "real", 10), weights=inception_weights,
                                  device="cpu", progress=False)
    kwargs = dict(num_gen=20, seed=3, weights=inception_weights, device="cpu", progress=False)
    a, b = fid(G, ref, batch_size=7, **kwargs), fid(G, ref, batch_size=32, **kwargs)
    assert a.metric == "fid20_full_unbiased" and a.value > 0
    assert a.value == pytest.approx(b.value, rel=1e-9)


def _degraded(src, dst, kind, level):
    dst.mkdir()
    rng = np.random.RandomState(0)
    for p in sorted(src.glob("*.png")):
        img = Image.open(p)
        if kind == "blur":
            img = img.filter(ImageFilter.GaussianBlur(level)) if level else img
        else:
            arr = np.asarray(img).astype(float) + rng.randn(*np.asarray(img).shape) * level
            img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        img.save(dst / p.name)
    return dst


@pytest.mark.slow
@pytest.mark.parametrize("kind,levels", [("blur", [0, 0.6, 1.5, 3.0]), ("noise", [0, 15, 40, 90])])
def test_fid_grows_with_degradation(tmp_path, kind, levels):
    """The FID paper's sanity check, with a fixed feature network (features of a user module)."""
    from stylegan_metrics.networks.registry import build_feature_extractor
    from helpers import feature_stats
    from stylegan_metrics.formulas.frechet import frechet_distance

    real = write_disc_images(tmp_path / "real", 200, size=32)
    ext = build_feature_extractor(SobelFeatures(), device=torch.device("cpu"))
    ref = feature_stats(ext, [torch.stack([torch.from_numpy(np.asarray(Image.open(p)).transpose(2, 0, 1).copy())
                                           for p in sorted(real.glob("*.png"))])])
    values = []
    for level in levels:
        folder = _degraded(real, tmp_path / f"{kind}{level}", kind, level)
        stats = compute_reference_stats(folder, features=SobelFeatures(), device="cpu", progress=False, cache=False)
        values.append(frechet_distance(stats.mu, stats.sigma, ref.mean(), ref.covariance()))
    assert values[0] == pytest.approx(0, abs=1e-6)
    assert all(a < b for a, b in zip(values, values[1:])), values


class SobelFeatures(torch.nn.Module):
    """Fixed features sensitive to both colour and edges: colour means and gradient-energy maps."""

    def forward(self, x):
        x = x.float() / 255
        gray = x.mean(dim=1, keepdim=True)
        kx = torch.tensor([[[[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]]])
        edges = torch.nn.functional.conv2d(gray, kx).square() + torch.nn.functional.conv2d(gray, kx.transpose(2, 3)).square()
        return torch.cat([x.mean(dim=(2, 3)), torch.nn.functional.adaptive_avg_pool2d(edges, 4).flatten(1)], dim=1)


def test_reference_stats_do_not_depend_on_workers_or_chunks(tmp_path):
    """DataLoader worker processes keep the image order (same sums, bit for bit); smaller chunks change only
    the order of the float64 additions."""
    folder = write_disc_images(tmp_path / "real", 12)
    stats = [compute_reference_stats(folder, features=SobelFeatures(), device="cpu", progress=False, cache=False,
                                     batch_size=3, **options)
             for options in ({"workers": 0}, {"workers": 2}, {"workers": 2, "chunk_size": 5})]
    assert np.array_equal(stats[0].mu, stats[1].mu) and np.array_equal(stats[0].sigma, stats[1].sigma)
    np.testing.assert_allclose(stats[2].sigma, stats[0].sigma, rtol=1e-12, atol=1e-15)
    assert stats[2].n == 12 and stats[0].sigma.std() > 0


def test_cache_hit_and_corrupt_cache_recomputed(tmp_path, metrics_home, monkeypatch):
    folder = write_disc_images(tmp_path / "real", 8)
    first = compute_reference_stats(folder, features=MeanColorFeatures(), device="cpu", progress=False)
    files = list((metrics_home / "stats").glob("*.npz"))
    assert len(files) == 1
    reference = importlib.import_module("stylegan_metrics.engine.reference")
    calls = []
    original = reference.run_pass
    monkeypatch.setattr(reference, "run_pass", lambda *a, **k: calls.append(1) or original(*a, **k))
    again = compute_reference_stats(folder, features=MeanColorFeatures(), device="cpu", progress=False)
    assert calls == [] and np.array_equal(again.sigma, first.sigma)  # served from the cache
    files[0].write_bytes(files[0].read_bytes()[:100])  # truncate it
    third = compute_reference_stats(folder, features=MeanColorFeatures(), device="cpu", progress=False)
    assert calls == [1] and np.allclose(third.sigma, first.sigma)
    assert ReferenceStats.load(files[0]).n == 8  # rewritten whole
    (folder / "0000.png").unlink()  # different data -> different key
    compute_reference_stats(folder, features=MeanColorFeatures(), device="cpu", progress=False)
    assert len(list((metrics_home / "stats").glob("*.npz"))) == 2


class NaNFeatures(torch.nn.Module):
    def forward(self, x):
        return torch.full((x.shape[0], 3), float("nan"))


@pytest.mark.parametrize("case", ["resolution", "grayscale", "empty", "unreadable", "nan", "mixed_sizes"])
def test_bad_reference_data_is_a_clear_error(tmp_path, metrics_home, case):
    folder = tmp_path / "ref"
    features = MeanColorFeatures()
    if case == "resolution":
        write_disc_images(folder, 4, size=32)
    elif case == "grayscale":
        write_disc_images(folder, 4)
        Image.open(folder / "0001.png").convert("L").save(folder / "0001.png")
    elif case == "empty":
        folder.mkdir()
    elif case == "unreadable":
        write_disc_images(folder, 4)
        (folder / "0002.png").write_bytes(b"\x89PNG broken")
    elif case == "nan":
        write_disc_images(folder, 4)
        features = NaNFeatures()
    elif case == "mixed_sizes":
        write_disc_images(folder, 4)
        Image.new("RGB", (8, 8)).save(folder / "0003.png")
    with pytest.raises(InputError) as info:
        fid(tiny_generator(16), folder, num_gen=4, features=features, device="cpu", progress=False)
    message = str(info.value)
    expected = {"resolution": "32x32 but the generator makes 16x16", "grayscale": "grayscale", "empty": "no images",
                "unreadable": "0002.png", "nan": "NaN", "mixed_sizes": "0003.png is 8x8"}[case]
    assert expected in message
    assert not (metrics_home / "stats").exists() or not list((metrics_home / "stats").glob("*.npz"))


def test_cli_fid_and_stats(tmp_path, metrics_home, inception_weights):
    G = tiny_generator(16)
    ckpt = save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)
    real = write_disc_images(tmp_path / "real", 6)
    runner = CliRunner()
    res = runner.invoke(main, ["stats", "--data", str(real), "--out", str(tmp_path / "ref.npz"), "--weights",
                               str(inception_weights), "--device", "cpu", "--no-progress", "--workers", "1",
                               "--chunk-size", "4"])
    assert res.exit_code == 0, res.output
    assert ReferenceStats.load(tmp_path / "ref.npz").n == 6
    out = tmp_path / "res.jsonl"
    args = ["fid", "--ckpt", str(ckpt), "--data", str(tmp_path / "ref.npz"), "--num", "6", "--batch", "4",
            "--weights", str(inception_weights), "--device", "cpu", "--out", str(out), "--no-progress"]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    import json
    line = json.loads(out.read_text().strip())
    assert line["metric"] == "fid6_full_unbiased" and line["snapshot_pkl"] == str(ckpt) and line["results"]["fid6_full_unbiased"] > 0
    assert set(line) >= {"results", "metric", "total_time", "total_time_str", "num_gpus", "timestamp", "params"}
    # offline without weights: one line, exit 2, and the JSONL already written is untouched
    before = out.read_bytes()
    i = args.index("--weights")
    res = runner.invoke(main, args[:i] + args[i + 2:])
    assert res.exit_code == 2 and "weights-inception-2015-12-05-6726825d.pth" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and out.read_bytes() == before


def test_generator_fingerprint_sees_the_weights_of_a_plain_object():
    """A generator on a plain object (NVIDIA's protocol, not a Module) is told apart by its mapping and
    synthesis weights, so a resumed run never takes another generator's saved chunks."""
    from stylegan_metrics.networks.registry import module_fingerprint

    class Wrapper:  # what a user might hand over: attributes, no nn.Module
        def __init__(self, G):
            self.mapping, self.synthesis = G.mapping, G.synthesis

    a, b = tiny_generator(16), tiny_generator(16)
    with torch.no_grad():
        b.synthesis.parameters().__next__().add_(1)
    assert module_fingerprint(Wrapper(a)) == module_fingerprint(Wrapper(a))
    assert module_fingerprint(Wrapper(a)) != module_fingerprint(Wrapper(b))
    assert module_fingerprint(a) != module_fingerprint(b) and module_fingerprint(object()) == "object"
