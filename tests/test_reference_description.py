"""Statistics files record their images (resolution, source, the network's resize rule) under their digest, older
files without that record still load, and generated images of another size than the reference's get one warning."""

import hashlib
import json
import warnings

import numpy as np
import pytest

from stylegan_core import InputError
from stylegan_metrics import ReferenceStats, compute_reference_stats, evaluate
from stylegan_metrics.networks.resizing import RESIZE_RULES
from helpers import write_disc_images


def digest_before_description(mu, sigma, n, features, fingerprint) -> str:
    """The content digest as statistics files carried it before they recorded their images."""
    h = hashlib.sha256()
    for a in (mu, sigma):
        a = np.ascontiguousarray(a, np.float64)
        h.update(json.dumps([a.dtype.str, list(a.shape)]).encode())
        h.update(a.tobytes())
    h.update(json.dumps([n, features, fingerprint]).encode())
    return h.hexdigest()


def small_stats(**description) -> ReferenceStats:
    x = np.random.default_rng(0).normal(size=(30, 3))
    return ReferenceStats(mu=x.mean(0), sigma=np.cov(x, rowvar=False), n=30, features="toyfaces", fingerprint="f",
                          **description)


def rewrite(path, **changes) -> None:
    """The .npz at `path` with some arrays replaced (None: removed), its digest left as it was."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    for k, v in changes.items():
        arrays.pop(k) if v is None else arrays.__setitem__(k, v)
    np.savez(path, **arrays)


def test_stats_record_resolution_source_and_resize(tmp_path, metrics_home):
    folder = write_disc_images(tmp_path / "real", 6, size=16)
    stats = compute_reference_stats(folder, features="toyfaces", device="cpu", progress=False)
    assert (stats.resolution, stats.n, stats.source) == (16, 6, str(folder.resolve()))
    assert stats.resize == RESIZE_RULES["toyfaces"] and "area" in stats.resize
    stats.save(tmp_path / "ref.npz")
    with np.load(tmp_path / "ref.npz") as raw:  # what pytorch-fid and clean-fid read is unchanged
        np.testing.assert_array_equal(raw["mu"], stats.mu)
        assert int(raw["resolution"]) == 16 and str(raw["resize"]) == stats.resize
    loaded = ReferenceStats.load(tmp_path / "ref.npz", require_digest=True)
    assert (loaded.resolution, loaded.source, loaded.resize) == (16, stats.source, stats.resize)
    again = compute_reference_stats(folder, features="toyfaces", device="cpu", progress=False)  # from the cache
    assert (again.resolution, again.source, again.resize) == (16, stats.source, stats.resize)

    from click.testing import CliRunner
    from stylegan_metrics_cli.main import main

    r = CliRunner().invoke(main, ["stats", "--data", str(folder), "--features", "toyfaces", "--out",
                                  str(tmp_path / "cli.npz"), "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert f"(6 images of 16x16, 240 toyfaces features; resized: {stats.resize})" in r.output  # what was recorded


def test_files_without_the_record_load_and_the_digest_covers_it(tmp_path):
    plain = small_stats()
    assert plain.digest() == digest_before_description(plain.mu, plain.sigma, 30, "toyfaces", "f")
    np.savez(tmp_path / "old.npz", mu=plain.mu, sigma=plain.sigma, n=np.int64(30), features=np.str_("toyfaces"),
             fingerprint=np.str_("f"), digest=np.str_(plain.digest()))  # written before the record existed
    old = ReferenceStats.load(tmp_path / "old.npz", require_digest=True)
    assert (old.resolution, old.source, old.resize, old.n) == (0, "", "", 30)
    np.savez(tmp_path / "pytorch-fid.npz", mu=np.zeros(2048), sigma=np.eye(2048))  # inception-v3's width
    assert ReferenceStats.load(tmp_path / "pytorch-fid.npz").resolution == 0

    described = small_stats(resolution=64, source="/data/faces.zip", resize="bilinear")
    assert described.digest() != plain.digest()
    path = described.save(tmp_path / "new.npz")
    assert ReferenceStats.load(path, require_digest=True).resolution == 64
    for change in ({"resolution": np.int64(128)}, {"source": np.str_("/data/other.zip")},
                   {"resize": np.str_("nearest")}, {"resolution": None, "source": None, "resize": None}):
        described.save(path)
        rewrite(path, **change)
        with pytest.raises(InputError, match="do not match their digest"):
            ReferenceStats.load(path)


@pytest.mark.parametrize("value, message", [(np.int64(-5), "not a size in pixels"),
                                            (np.str_("large"), "not a size in pixels"),
                                            (np.arange(2), "not a single value")])
def test_a_bad_resolution_is_refused(tmp_path, value, message):
    path = small_stats(resolution=32).save(tmp_path / "s.npz")
    rewrite(path, resolution=value)
    with pytest.raises(InputError, match=message):
        ReferenceStats.load(path)


def test_generated_images_of_another_size_warn_once(tmp_path, metrics_home):
    gen = write_disc_images(tmp_path / "gen", 6, size=16, seed=1)
    same = write_disc_images(tmp_path / "same", 6, size=16, seed=2)
    larger = write_disc_images(tmp_path / "larger", 6, size=32, seed=2)
    options = dict(gen=gen, features="toyfaces", device="cpu", progress=False)
    with pytest.warns(UserWarning) as record:
        results = evaluate(None, ["fid", "kid"], data=larger, **options)
    messages = [str(w.message) for w in record if "reference images" in str(w.message)]
    assert len(messages) == 1 and all(np.isfinite(r.value) for r in results[:2])
    assert "16x16" in messages[0] and "32x32" in messages[0] and RESIZE_RULES["toyfaces"] in messages[0]
    assert "toyfaces (fid6_full, kid6_full)" in messages[0]

    stats = compute_reference_stats(larger, features="toyfaces", device="cpu", progress=False)
    stats.save(tmp_path / "larger.npz")
    with pytest.warns(UserWarning, match="are 16x16 but the reference images .* are 32x32"):
        evaluate(None, ["fid"], data=tmp_path / "larger.npz", **options)  # the size the file records
    with pytest.warns(UserWarning, match=r"reference images \(ReferenceStats\) are 32x32"):
        evaluate(None, ["fid"], data=stats, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate(None, ["fid", "kid"], data=same, **options)
        np.savez(tmp_path / "unknown.npz", mu=stats.mu, sigma=stats.sigma, n=np.int64(6),
                 features=np.str_("toyfaces"))  # no recorded size: nothing to say
        evaluate(None, ["fid"], data=tmp_path / "unknown.npz", **options)
