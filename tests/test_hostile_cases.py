"""Hostile and careless input through the CLI: the perceptual networks refuse images too small for their poolings
with one line, and the advice of a refusal names an option the command has."""

import re
import zipfile

import numpy as np
import pytest

from stylegan_core import InputError, save_checkpoint
from helpers import invoke, one_line_error, tiny_generator

pytestmark = pytest.mark.usefixtures("one_thread")


def test_toyfaces_lpips_refuses_a_crop_too_small_for_its_poolings(tmp_path):
    G = save_checkpoint(tmp_path / "G16.pt", G=tiny_generator(16), G_ema=tiny_generator(16))
    common = ["--ckpt", G, "--similarity", "toyfaces-lpips", "--device", "cpu", "--no-progress"]
    message = "toyfaces-lpips needs images of at least 16x16 pixels after cropping, got 8x8"
    one_line_error(invoke("ppl", *common, "--num", "4"), message)
    one_line_error(invoke("evaluate", *common, "--metrics", "ppl4_wend"), message)
    r = invoke("ppl", *common, "--num", "4", "--no-crop")  # the whole 16 px image passes four 2x poolings
    assert r.exit_code == 0, r.output
    assert np.isfinite(float(r.output.split("ppl4_wend_nocrop = ")[1].split()[0]))


def test_statistics_without_n_name_the_suffix_train_takes(tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 240))
    ref = tmp_path / "ref.npz"
    np.savez(ref, mu=x.mean(0), sigma=np.cov(x, rowvar=False), features=np.str_("toyfaces"))  # no n
    data = tmp_path / "data"
    data.mkdir()
    run = tmp_path / "run"
    r = invoke("train", "--data", data, "--out", run, "--resolution", "8", "--kimg", "1", "--device", "cpu",
               "--metrics", "fid8_full", "--metrics-features", "toyfaces", "--metrics-data", ref)
    one_line_error(r, "--metrics fid8_full", "do not record their number of images (n)",
                   "the suffix _unbiased, fid50k_full_unbiased")
    assert not run.exists()


@pytest.mark.parametrize("name", ["data.zip", "dataset.json", "G.pkl"])
def test_checkpoint_outputs_never_replace_another_kind_of_file(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    victim = tmp_path / name
    victim.write_bytes(b"PK\x03\x04 a user's file")
    one_line_error(invoke("convert", "toyfaces", name), f"{name}: checkpoints are written to a name ending in .pt")
    labels = tmp_path / "labels.json"
    labels.write_text('{"labels": []}')
    trained = []
    monkeypatch.setattr("stylegan_metrics.networks.classifier.ImageDataset", lambda *a, **k: trained.append(1))
    one_line_error(invoke("train-classifier", "--data", tmp_path, "--labels", labels, "--out", name),
                   "checkpoints are written to a name ending in .pt")
    assert victim.read_bytes() == b"PK\x03\x04 a user's file" and trained == []  # refused before any image is read
    r = invoke("convert", "toyfaces", "G.pt")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_device_or_pipe_as_a_dataset_is_refused_without_reading_it(tmp_path, monkeypatch, kind):
    import os
    import zipfile

    from stylegan_core.data.datasets import ImageDataset
    from stylegan_core.errors import DatasetError

    path = "/dev/zero"  # zipfile.is_zipfile reads a device to its end: /dev/zero took 11 GB within a minute
    if kind == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)  # opening it would wait for a writer forever
    sniffed = []
    monkeypatch.setattr(zipfile, "is_zipfile", lambda p: sniffed.append(p))
    with pytest.raises(DatasetError, match="not an image folder or a zip file"):
        ImageDataset(path)
    assert sniffed == []
    monkeypatch.undo()
    one_line_error(invoke("fid", "--ckpt", "toyfaces", "--data", path, "--features", "toyfaces", "--num", "4",
                          "--device", "cpu"), "not an image folder or a zip file")


@pytest.mark.parametrize("layout", ["folder", "zip"])
@pytest.mark.parametrize("content", [b"", b"not a picture"])
def test_an_empty_or_foreign_file_among_images_is_named_not_a_buffer(tmp_path, layout, content):
    """PIL names the in-memory buffer it was given (`<_io.BytesIO object at 0x...>`); the message names the file."""
    from stylegan_core.data.datasets import ImageDataset

    root = tmp_path / "d"
    root.mkdir()
    (root / "a.png").write_bytes(content)
    path = root
    if layout == "zip":
        path = tmp_path / "d.zip"
        with zipfile.ZipFile(path, "w") as zf:
            zf.write(root / "a.png", "a.png")
    message = rf"^{re.escape(str(path))}: a.png: not an image PIL can read \({len(content)} bytes\)$"
    with pytest.raises(InputError, match=message):
        ImageDataset(path, channels=3, labels=False)[0]
