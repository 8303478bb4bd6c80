"""Image folder and zip datasets: layout, labels, resizing, x-flip and errors."""

import numpy as np
import pytest
from PIL import Image

from stylegan_core import DatasetError, ImageDataset
from helpers import FLAT_COLOR, write_zip_dataset


def test_folder_is_recursive_and_sorted(flat_folder):
    ds = ImageDataset(flat_folder)
    assert len(ds) == 32 and ds.resolution == 8 and ds.labels is None
    assert ds.files[0] == "part0/img0000.png" and ds.files[-1] == "part1/img0031.png"
    img, label = ds[0]
    assert img.shape == (3, 8, 8) and str(img.dtype) == "torch.uint8" and label.numel() == 0
    assert np.abs(img[:, 0, 0].numpy().astype(int) - FLAT_COLOR).max() <= 20


def test_zip_layout_with_labels_resize_and_flip(tmp_path):
    rng = np.random.RandomState(0)
    images = [rng.randint(0, 256, (12, 16, 3), dtype=np.uint8) for _ in range(5)]
    path = write_zip_dataset(tmp_path / "ds.zip", images, labels=[3, 1, 4, 1, 5])
    ds = ImageDataset(path, resolution=8, xflip=True)
    assert len(ds) == 10 and ds.labels.tolist() == [3, 1, 4, 1, 5]
    img, label = ds[2]
    expected = np.asarray(Image.fromarray(images[2]).crop((2, 0, 14, 12)).resize((8, 8), Image.LANCZOS))
    assert np.array_equal(img.permute(1, 2, 0).numpy(), expected)  # centre crop, then Lanczos
    flipped, flabel = ds[7]
    assert np.array_equal(flipped.numpy(), img.numpy()[:, :, ::-1]) and int(flabel) == 4


def test_grayscale_channels(flat_folder):
    img, _ = ImageDataset(flat_folder, channels=1)[0]
    assert img.shape == (1, 8, 8)


@pytest.mark.parametrize("case", ["missing", "empty", "not_images", "corrupt", "unlabelled"])
def test_bad_datasets(tmp_path, case):
    path = tmp_path / "data"
    if case == "empty":
        path.mkdir()
    elif case == "not_images":
        path.write_text("hello")
    elif case == "corrupt":
        path.mkdir()
        (path / "a.png").write_bytes(b"not a png")
    elif case == "unlabelled":
        path = write_zip_dataset(tmp_path / "d.zip", [np.zeros((4, 4, 3), np.uint8)] * 2, labels=[1, 2])
        import zipfile
        with zipfile.ZipFile(path, "a") as zf:
            buf = __import__("io").BytesIO()
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, format="PNG")
            zf.writestr("00000/img99999999.png", buf.getvalue())
    with pytest.raises(DatasetError, match=str(path.name)):
        ds = ImageDataset(path)
        ds[0]
