"""Reference images given as a dataset object (ToyFaces, or any dataset with `fingerprint()`): the same numbers as
the same images written to a zip, cached by fingerprint, and clear errors for what cannot be a reference."""

import numpy as np
import pytest
import torch

from stylegan_core.data.toyfaces import ToyFaces, write_toyfaces
from stylegan_core.errors import InputError
from stylegan_metrics import evaluate
from stylegan_metrics.engine.reference_images import open_images
from stylegan_metrics.networks.registry import build_feature_extractor
from stylegan_metrics.networks.toyfaces_nets import load_toyfaces_classifier
from helpers import tiny_generator

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def toyfaces_extractor():
    return build_feature_extractor("toyfaces", device=CPU)


def test_dataset_object_gives_the_numbers_of_the_same_images_in_a_zip(tmp_path, metrics_home, toyfaces_extractor):
    G = tiny_generator(32, seed=2)
    names = ["fid24_full", "kid24_full", "is24"]
    zipped = write_toyfaces(tmp_path / "real.zip", 30, resolution=32, progress=False)  # PNG: lossless
    from_zip = evaluate(G, names, data=zipped, features=toyfaces_extractor, batch_size=8, device="cpu",
                        progress=False)
    from_object = evaluate(G, names, data=ToyFaces(30, resolution=32), features=toyfaces_extractor, batch_size=8,
                           device="cpu", progress=False)
    for a, b in zip(from_zip, from_object):
        assert a.results == pytest.approx(b.results, rel=1e-9, abs=1e-12)
    assert from_object[1].params["reference_n"] == 30
    assert from_object[0].params["reference"].startswith("ToyFaces(num=30")
    kept = list((metrics_home / "stats").glob("toyfaces-features-*.npy"))
    assert len(kept) == 1 and np.load(kept[0]).shape == (30, toyfaces_extractor.module(
        torch.zeros(1, 3, 32, 32, dtype=torch.uint8))[0].shape[1])


def test_kept_reference_features_respect_max_real_and_resolution(metrics_home, toyfaces_extractor):
    G = tiny_generator(32, seed=2)
    [kid] = evaluate(G, ["kid12"], data=ToyFaces(30, resolution=32), features=toyfaces_extractor, batch_size=8,
                     device="cpu", progress=False)
    assert kid.params["reference_n"] == 12  # kidN: the first N reference images
    with pytest.raises(InputError, match="images are 16x16 but the generator makes 32x32"):
        evaluate(G, ["kid12"], data=ToyFaces(30, resolution=16), features=toyfaces_extractor, device="cpu",
                 progress=False)


class Unnamed(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.zeros(3, 8, 8, dtype=torch.uint8)


class FloatImages(Unnamed):
    def fingerprint(self):
        return {"zeros": 4}

    def __getitem__(self, i):
        return torch.zeros(3, 8, 8)


class Named(Unnamed):
    def fingerprint(self):
        return {"zeros": 4}


class NumpyFingerprint(Unnamed):
    def fingerprint(self):
        return {"count": np.int64(4)}  # not JSON: refused, not a TypeError deep in the cache code


def test_what_cannot_be_reference_images_is_refused():
    with pytest.raises(InputError, match="fingerprint"):
        open_images(Unnamed())
    with pytest.raises(InputError, match="expected square uint8"):
        open_images(FloatImages())
    images = open_images(Named(), max_items=3)
    assert (len(images), images.resolution, images.stem) == (3, 8, "named")
    assert images.fingerprint == {"dataset": f"{__name__}.Named", "fingerprint": {"zeros": 4}}
    with pytest.raises(InputError, match="plain JSON values"):
        open_images(NumpyFingerprint())


def test_toyfaces_fingerprint_names_everything_that_changes_the_images():
    base = ToyFaces(10, resolution=32).fingerprint()
    for other in (ToyFaces(11, resolution=32), ToyFaces(10, resolution=64), ToyFaces(10, resolution=32, seed=1),
                  ToyFaces(10, resolution=32, start=5)):
        assert other.fingerprint() != base
    assert ToyFaces(10, resolution=32).fingerprint() == base


def test_hair_inception_score_of_real_toyfaces_is_the_exp_entropy_of_their_hair():
    """A confident, correct classifier scores a set of images at exp(H) of its class frequencies: the hair logits'
    softmax must put nearly all mass on each face's true hair state (bald, 4 colours, or other)."""
    from stylegan_core.data.toyfaces import render_toyfaces
    from stylegan_metrics.formulas.inception_score import inception_score_from_probs
    from stylegan_metrics.networks.toyfaces_nets import HAIR_STATES, ToyfacesFeatures

    classifier = load_toyfaces_classifier()
    images, labels = render_toyfaces(400, resolution=32, seed=7)
    features, logits = ToyfacesFeatures(classifier)(torch.from_numpy(images))
    assert logits.shape == (400, 6) and torch.all(logits[:, 5] == 0)
    from stylegan_core.data.images import from_uint8
    own = classifier(from_uint8(torch.from_numpy(images)))[:, [classifier.attributes.index(a) for a in HAIR_STATES]]
    torch.testing.assert_close(logits[:, :5], own)  # the classifier's own logits, from the same pass as the features
    probs = logits.double().softmax(dim=1).numpy()
    hair = labels[:, [classifier.attributes.index(a) for a in HAIR_STATES]].astype(np.float64)
    truth = np.concatenate([hair, 1 - hair.sum(axis=1, keepdims=True)], axis=1)  # [N, 6], one-hot
    assert np.all(truth.sum(axis=1) == 1) and np.all(truth >= 0)
    assert (probs.argmax(axis=1) == truth.argmax(axis=1)).mean() > 0.98
    q = truth.mean(axis=0)
    exp_entropy = np.exp(-(q[q > 0] * np.log(q[q > 0])).sum())
    score, _ = inception_score_from_probs(probs, num_splits=1)
    assert score == pytest.approx(exp_entropy, rel=0.03)
    assert 4 < score < 6


@pytest.mark.parametrize("damage", ["edited", "truncated", "no digest", "not an array"])
def test_damaged_feature_cache_is_recomputed_not_trusted(metrics_home, toyfaces_extractor, damage):
    G = tiny_generator(32, seed=2)

    def run():
        return [r.value for r in evaluate(G, ["kid12", "fid12"], data=ToyFaces(30, resolution=32),
                                          features=toyfaces_extractor, batch_size=8, device="cpu", progress=False)]

    first = run()
    [cache] = (metrics_home / "stats").glob("toyfaces-features-*.npy")
    for stats in (metrics_home / "stats").glob("toyfaces-*.npz"):
        stats.unlink()  # so that FID, too, reads the damaged features (or computes them again)
    rows = np.load(cache)
    if damage == "edited":
        np.save(cache, rows + 1)  # finite, right shape: only the digest tells
    elif damage == "truncated":
        cache.write_bytes(cache.read_bytes()[:200])
    elif damage == "no digest":
        cache.with_name(cache.name + ".sha256").unlink()
    else:
        with open(cache, "wb") as f:
            np.savez(f, rows=rows)  # a zip where a .npy belongs
    assert run() == first
    np.testing.assert_array_equal(np.load(cache), rows)  # replaced by the recomputed features


def test_networks_are_checked_before_any_reference_pass(metrics_home, toyfaces_extractor, monkeypatch, tmp_path):
    """PPL's LPIPS weights are missing (offline): the evaluation fails before KID's reference images are read."""
    from stylegan_metrics.networks.weights import WeightsError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-home"))
    read = []
    monkeypatch.setattr(ToyFaces, "__getitem__", lambda self, i: read.append(i) or pytest.fail("reference read"))
    with pytest.raises(WeightsError, match="vgg16"):
        evaluate(tiny_generator(32), ["kid12", "ppl8_wend"], data=ToyFaces(30, resolution=32),
                 features=toyfaces_extractor, device="cpu", progress=False)
    assert read == []


def test_cached_features_are_hashed_once_per_file_version(metrics_home, toyfaces_extractor, monkeypatch):
    """KID reads the cached reference features and FID sums the same file: its digest is checked once."""
    import stylegan_metrics.engine.reference_cache as reference

    G = tiny_generator(32, seed=2)
    names = ["kid12", "fid12"]
    evaluate(G, names, data=ToyFaces(30, resolution=32), features=toyfaces_extractor, device="cpu", progress=False)
    for stats in (metrics_home / "stats").glob("toyfaces-*.npz"):
        stats.unlink()  # FID must read the features again
    reference._digest_matches.cache_clear()
    hashed, sha = [], reference._sha256_of_rows
    monkeypatch.setattr(reference, "_sha256_of_rows", lambda rows: hashed.append(rows.shape) or sha(rows))
    evaluate(G, names, data=ToyFaces(30, resolution=32), features=toyfaces_extractor, device="cpu", progress=False)
    assert len(hashed) == 1
