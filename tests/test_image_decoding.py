"""One decoding rule for generated (`--gen`), reference (`--data`) and training images: bit depths, sizes, the
pixel bound read from the header, dataset.json labels and train-classifier's labels; folders and zips alike."""

import io
import json
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from stylegan_core import DatasetError, ImageDataset, InputError, load_generator
from stylegan_core.data.decoding import MAX_IMAGE_SIDE, to_uint8_array
from stylegan_metrics.engine.reference_images import dataset_batches, open_images
from helpers import labels_of
from stylegan_metrics.engine.generated import generated_images
from stylegan_metrics.networks.classifier import read_attribute_labels
from helpers import invoke, one_line_error

FIXTURES = Path(__file__).parent / "fixtures"
CPU = torch.device("cpu")
LAYOUTS = ["folder", "zip"]


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def tiff_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="TIFF")
    return buffer.getvalue()


def png16_bytes(pixels: np.ndarray) -> bytes:
    """A 16-bit-per-channel PNG (colour type 2 for [H, W, 3], 6 for [H, W, 4]), which PIL cannot write."""
    h, w, c = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(h))
    return _png(w, h, 16, {3: 2, 4: 6}[c], zlib.compress(raw))


def _png(w: int, h: int, depth: int, color_type: int, idat: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def zeros_png(side: int) -> bytes:
    """An 8-bit grayscale PNG of side x side zeros, compressed row by row (never held in memory)."""
    z = zlib.compressobj(9)
    row = bytes(side + 1)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    return _png(side, side, 8, 0, idat)


def write_dataset(root: Path, layout: str, files: list[bytes], *, suffix: str = ".png", labels=None) -> Path:
    """Files in NVIDIA's dataset_tool layout (00000/img00000000.png, dataset.json) as a folder or a zip."""
    names = [f"{i // 1000:05d}/img{i:08d}{suffix}" for i in range(len(files))]
    members = dict(zip(names, files))
    if labels is not None:
        members["dataset.json"] = json.dumps({"labels": [[n, v] for n, v in zip(names, labels)]}).encode()
    if layout == "zip":
        path = root.with_suffix(".zip")
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        return path
    for name, data in members.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def refusal(make) -> str:
    """The message of the DatasetError that `make()` raises (reading every item of what it returns)."""
    with pytest.raises(DatasetError) as caught:
        dataset = make()
        for i in range(len(dataset)):
            dataset[i]
    return str(caught.value)


def both_sides(path: Path) -> tuple[str, str]:
    """The refusals of `path` as generated images and as reference images: the same rule reads both."""
    return refusal(lambda: generated_images(path)), refusal(lambda: open_images(path).dataset)


# ---- 16-bit and float pixels ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
def test_16_bit_and_float_grayscale_decode_to_the_8_bit_pictures(tmp_path, layout):
    rng = np.random.default_rng(0)
    pictures = [rng.integers(0, 256, (6, 6), dtype=np.uint8) for _ in range(3)]
    eight = write_dataset(tmp_path / "8", layout, [png_bytes(Image.fromarray(p)) for p in pictures])
    sixteen = write_dataset(tmp_path / "16", layout, [png_bytes(Image.fromarray(p.astype(np.uint16) * 257))
                                                      for p in pictures])
    floats = write_dataset(tmp_path / "f", layout, [tiff_bytes(Image.fromarray(p.astype(np.float32) / 255))
                                                    for p in pictures], suffix=".tif")
    assert Image.open(io.BytesIO(png_bytes(Image.fromarray(pictures[0].astype(np.uint16))))).mode == "I;16"
    for channels in (1, 3):
        expected = [np.repeat(p[None], channels, axis=0) for p in pictures]
        for path in (eight, sixteen, floats):
            got = [ImageDataset(path, channels=channels)[i][0].numpy() for i in range(3)]
            assert all(np.array_equal(g, e) for g, e in zip(got, expected)), (path, channels)


def test_16_bit_values_are_scaled_by_255_over_65535_and_rounded(tmp_path):
    values = np.array([[0, 128, 129, 385], [386, 32767, 32768, 65278], [65279, 65406, 65407, 65535],
                       [257, 514, 1000, 60000]], np.uint16)
    path = write_dataset(tmp_path / "d", "folder", [png_bytes(Image.fromarray(values))])
    got = ImageDataset(path, channels=1)[0][0][0].numpy()
    assert got.tolist() == [[0, 0, 1, 1], [2, 127, 128, 254], [254, 254, 255, 255], [1, 2, 4, 233]]
    assert np.array_equal(got, np.round(values / 65535 * 255).astype(np.uint8))


def test_float_values_are_scaled_by_255_and_rounded_and_out_of_range_is_refused(tmp_path):
    values = np.array([[0, 0.4 / 255, 0.6 / 255, 0.499], [0.5, 0.501, 254.4 / 255, 254.6 / 255], [1, 0.25, 0.75, 0.2],
                       [0.91, 0.01, 0.99, 0.6]], np.float32)
    path = write_dataset(tmp_path / "d", "folder", [tiff_bytes(Image.fromarray(values))], suffix=".tif")
    assert ImageDataset(path, channels=1)[0][0][0].tolist() == [[0, 0, 1, 127], [128, 128, 254, 255],
                                                                [255, 64, 191, 51], [232, 3, 252, 153]]
    for bad, says in ((1.5, "float pixels must lie in 0..1, these run from 0 to 1.5"), (np.nan, "NaN")):
        path = write_dataset(tmp_path / f"bad{bad}", "folder",
                             [tiff_bytes(Image.fromarray(np.array([[0, bad], [0, 0]], np.float32)))], suffix=".tif")
        message = refusal(lambda: ImageDataset(path, channels=1))
        assert message.startswith(f"{path}: 00000/img00000000.tif: ") and says in message, message


@pytest.mark.parametrize("layout", LAYOUTS)
def test_generated_and_reference_images_refuse_16_bit_and_float_pictures_alike(tmp_path, layout):
    rng = np.random.default_rng(1)
    gray = [png_bytes(Image.fromarray(rng.integers(0, 65536, (8, 8), dtype=np.uint16))) for _ in range(4)]
    path = write_dataset(tmp_path / "gray16", layout, gray)
    gen, ref = both_sides(path)
    assert gen == ref == f"{path}: 00000/img00000000.png is grayscale (I;16); RGB images are needed"
    path = write_dataset(tmp_path / "gray8", layout, [png_bytes(Image.new("L", (8, 8), 7))] * 2)
    assert both_sides(path) == (f"{path}: 00000/img00000000.png is grayscale (L); RGB images are needed",) * 2
    colour = [png16_bytes(rng.integers(0, 65536, (8, 8, c), dtype=np.uint16)) for c in (3, 3, 4)]
    path = write_dataset(tmp_path / "rgb16", layout, colour)
    gen, ref = both_sides(path)
    assert gen == ref and gen.startswith(f"{path}: 00000/img00000000.png: 16 bits per colour channel (RGB;16B)")
    path = write_dataset(tmp_path / "float", layout, [tiff_bytes(Image.fromarray(np.zeros((8, 8), np.float32)))] * 2,
                         suffix=".tif")
    gen, ref = both_sides(path)
    assert gen == ref == f"{path}: 00000/img00000000.tif is grayscale (F); RGB images are needed"
    ints = write_dataset(tmp_path / "i32", layout, [tiff_bytes(Image.fromarray(np.zeros((4, 4), np.int32)))],
                         suffix=".tif")
    assert "32-bit integer pixels (mode I)" in refusal(lambda: ImageDataset(ints, channels=1))


def test_the_cli_refuses_16_bit_generated_images_in_one_line(tmp_path, metrics_home):
    rng = np.random.default_rng(2)
    real = write_dataset(tmp_path / "real", "folder", [png_bytes(Image.fromarray(rng.integers(0, 256, (16, 16, 3),
                                                                                              dtype=np.uint8)))] * 4)
    gray16 = png_bytes(Image.fromarray(np.full((16, 16), 40000, np.uint16)))
    gen = write_dataset(tmp_path / "gen", "folder", [gray16] * 4)
    r = invoke("fid", "--gen", gen, "--data", real, "--features", "toyfaces", "--device", "cpu", "--no-progress")
    one_line_error(r, f"{gen}: 00000/img00000000.png is grayscale (I;16); RGB images are needed")


# ---- sizes ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
def test_mixed_sizes_are_refused_naming_the_first_other_size_never_resized(tmp_path, layout):
    def rgb(w, h):
        return png_bytes(Image.new("RGB", (w, h), (10, 20, 30)))
    path = write_dataset(tmp_path / "first_wide", layout, [rgb(64, 48)] + [rgb(32, 32)] * 39)
    gen, ref = both_sides(path)
    assert gen == ref == f"{path}: 00000/img00000000.png is 64x48; images must be square"
    path = write_dataset(tmp_path / "odd", layout, [rgb(16, 16)] * 3 + [rgb(12, 12), rgb(20, 16)])
    gen, ref = both_sides(path)
    assert gen == ref == (f"{path}: 00000/img00000003.png is 12x12, expected 16x16 like the first image, "
                          f"00000/img00000000.png (images are never resized to match)")
    assert refusal(lambda: ImageDataset(path)) == gen  # training without --resolution: the same rule
    resized = ImageDataset(path, resolution=8)  # training's --resolution: every image centre-cropped and resized
    assert [tuple(resized[i][0].shape) for i in range(5)] == [(3, 8, 8)] * 5


def test_a_decoding_worker_refuses_in_one_line(tmp_path):
    path = write_dataset(tmp_path / "odd", "folder", [png_bytes(Image.new("RGB", (s, s))) for s in (8, 8, 8, 6, 8)])
    batches = dataset_batches(generated_images(path), batch_size=2, workers=1, device=CPU)
    seen = []
    with pytest.raises(DatasetError) as caught:
        for batch in batches(0, 5):
            seen.append(batch.shape[0])
    assert str(caught.value) == (f"{path}: 00000/img00000003.png is 6x6, expected 8x8 like the first image, "
                                 f"00000/img00000000.png (images are never resized to match)")
    assert seen == [2]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_huge_first_image_is_refused_from_its_header(tmp_path, layout, monkeypatch, metrics_home):
    bomb = zeros_png(12000)
    assert len(bomb) < 600_000
    small = [png_bytes(Image.new("RGB", (16, 16), (9, 9, 9)))] * 3
    path = write_dataset(tmp_path / "bomb", layout, [bomb] + small)
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("pixels were decoded"))
    expected = (f"{path}: 00000/img00000000.png: 12000x12000 pixels, more than an image may have "
                f"({MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE}); nothing was decoded")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even PIL's decompression-bomb warning
        assert both_sides(path) == (expected, expected)
        assert refusal(lambda: ImageDataset(path, resolution=16)) == expected  # training too
    monkeypatch.undo()
    real = write_dataset(tmp_path / "real", "folder", small)
    r = invoke("fid", "--gen", path, "--data", real, "--features", "toyfaces", "--device", "cpu", "--no-progress")
    one_line_error(r, expected)


# ---- dataset.json labels -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("labels,says", [
    ([0, 1.5, 0.5, 1], "the label of 00000/img00000001.png is 1.5; a class label must be an integer >= 0"),
    ([0, 1, float("nan"), 1], "the label of 00000/img00000002.png is nan; a class label must be an integer >= 0"),
    ([0, -1, 2, 1], "the label of 00000/img00000001.png is -1; a class label must be an integer >= 0"),
    ([[0, 1], [1, 0], [1, float("inf")], [0, 0]],
     "the label of 00000/img00000002.png is [1, inf]; label vectors must hold finite numbers"),
])
def test_bad_labels_are_refused_naming_dataset_json_and_the_first_bad_entry(tmp_path, layout, labels, says):
    images = [png_bytes(Image.new("RGB", (16, 16), (40 * i, 0, 0))) for i in range(4)]
    path = write_dataset(tmp_path / "d", layout, images, labels=labels)
    message = refusal(lambda: ImageDataset(path))
    assert message.startswith(f"{path}: dataset.json: {says}"), message
    G = load_generator(FIXTURES / "nvidia_ada_conditional.pkl")
    with pytest.raises(InputError, match="dataset.json: the label of 00000/img0000000"):
        labels_of(G, data=path, seed=0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_integral_class_labels_and_vectors_are_read(tmp_path, layout):
    images = [png_bytes(Image.new("RGB", (16, 16), (40 * i, 0, 0))) for i in range(4)]
    classes = ImageDataset(write_dataset(tmp_path / "c", layout, images, labels=[3, 1.0, 0, 2])).labels
    assert classes.dtype == np.int64 and classes.tolist() == [3, 1, 0, 2]
    vectors = ImageDataset(write_dataset(tmp_path / "v", layout, images, labels=[[0.5, -1]] * 4)).labels
    assert vectors.dtype == np.float32 and vectors.tolist() == [[0.5, -1]] * 4
    G = load_generator(FIXTURES / "nvidia_ada_conditional.pkl")
    c = labels_of(G, data=write_dataset(tmp_path / "c4", layout, images, labels=[3, 1, 0, 2]), seed=0)(0, 16)
    assert set(c.argmax(1).tolist()) <= {0, 1, 2, 3} and (c.sum(1) == 1).all()


# ---- train-classifier labels ---------------------------------------------------------------------------------------
def test_train_classifier_reads_class_labels_as_one_attribute_per_class(tmp_path):
    files = [f"00000/img{i:08d}.png" for i in range(5)]
    labels = tmp_path / "dataset.json"
    labels.write_text(json.dumps({"labels": [[f, c] for f, c in zip(files, [2, 0, 1, 2, 0])]}))
    names, values = read_attribute_labels(labels, files)
    assert names == ["class0", "class1", "class2"]
    assert values.tolist() == [[False, False, True], [True, False, False], [False, True, False],
                               [False, False, True], [True, False, False]]
    labels.write_text(json.dumps({"labels": [[f, [1, -1]] for f in files]}))
    names, values = read_attribute_labels(labels, files)
    assert names == ["Male", "Smiling"] and values.tolist() == [[True, False]] * 5
    labels.write_text(json.dumps({"labels": [[f, 0.5] for f in files]}))
    with pytest.raises(InputError, match=r"dataset.json: the label of 00000/img00000000.png is 0.5; a class label"):
        read_attribute_labels(labels, files)
    labels.write_text(json.dumps({"labels": [[f, [1, -1]] for f in files], "attributes": ["a", "b", "c"]}))
    with pytest.raises(InputError, match="each image has 2 labels, but there are 3 attribute names"):
        read_attribute_labels(labels, files)
    celeba = tmp_path / "list_attr.txt"
    celeba.write_text("2\nA B\nimg00000000.png 1 -1\nimg00000001.png 1 x\n")
    with pytest.raises(InputError, match=r"the labels of image 00000/img00000001.png are not all numbers \(1 x\)"):
        read_attribute_labels(celeba, files[:2])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_train_classifier_cli_with_nvidias_class_labels(tmp_path, layout):
    rng = np.random.default_rng(3)
    classes = [0, 1, 2, 0, 1, 2, 0, 1]
    images = [png_bytes(Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))) for _ in classes]
    data = write_dataset(tmp_path / "d", layout, images, labels=classes)
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"labels": [[f"00000/img{i:08d}.png", c] for i, c in enumerate(classes)]}))
    r = invoke("train-classifier", "--data", data, "--labels", labels, "--out", tmp_path / "C.pt", "--attributes", "3",
               "--resolution", "16", "--epochs", "1", "--batch", "4", "--no-progress")
    assert r.exit_code == 0, r.output
    assert "class0" in r.output and "class2" in r.output and (tmp_path / "C.pt").is_file()
    labels.write_text(json.dumps({"labels": [[f"00000/img{i:08d}.png", c + 0.5] for i, c in enumerate(classes)]}))
    r = invoke("train-classifier", "--data", data, "--labels", labels, "--out", tmp_path / "D.pt", "--resolution",
               "16", "--epochs", "1", "--no-progress")
    one_line_error(r, f"{labels}: the label of 00000/img00000000.png is 0.5; a class label must be an integer >= 0")
    assert not (tmp_path / "D.pt").exists()
    # the data's own dataset.json is not what train-classifier reads: labels it could not use do not matter
    other = write_dataset(tmp_path / "e", layout, images, labels=[c + 0.5 for c in classes])
    labels.write_text(json.dumps({"labels": [[f"00000/img{i:08d}.png", c] for i, c in enumerate(classes)]}))
    r = invoke("train-classifier", "--data", other, "--labels", labels, "--out", tmp_path / "E.pt", "--attributes",
               "3", "--resolution", "16", "--epochs", "1", "--batch", "4", "--no-progress")
    assert r.exit_code == 0 and (tmp_path / "E.pt").is_file(), r.output


def test_16_bit_grayscale_opened_as_mode_i_by_older_pillow_is_scaled_not_refused():
    values = np.array([[0, 128, 129, 65535]], np.uint16)
    img = Image.open(io.BytesIO(png_bytes(Image.fromarray(values))))
    img._mode = "I"  # how Pillow before 10 opens a 16-bit grayscale PNG (raw mode I;16B decoded to 32-bit ints)
    assert to_uint8_array(img, 1, "x.png")[:, :, 0].tolist() == [[0, 0, 1, 255]]
    ints = Image.open(io.BytesIO(tiff_bytes(Image.fromarray(np.array([[0, 70000]], np.int32)))))
    with pytest.raises(DatasetError, match="32-bit integer pixels"):
        to_uint8_array(ints, 1, "x.tif")
