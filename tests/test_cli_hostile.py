"""The command line given files that are not what an option expects, and counts far beyond any use: one error line,
exit status 2, no user file touched."""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from stylegan_core.data.datasets import ImageDataset
from stylegan_core.errors import InputError

from helpers import invoke, one_line_error


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_generate_out_an_existing_file_without_image_suffix_is_refused_untouched(tmp_path):
    for name in ("dataset.json", "stats.npz", "notes"):
        target = tmp_path / name
        target.write_bytes(b'{"labels": null}')
        before = digest(target)
        r = invoke("generate", "--ckpt", "toyfaces", "--seeds", "0-1", "--out", target, "--device", "cpu")
        one_line_error(r, f"{target}: exists and is not a folder", "grid.png")
        assert digest(target) == before


def test_toyfaces_num_beyond_any_use_is_refused_before_writing(tmp_path):
    r = invoke("toyfaces", "--num", "100000000000000", "--resolution", "16", "--out", tmp_path / "t.zip")
    one_line_error(r, "--num", last_line=True)
    assert list(tmp_path.iterdir()) == []


def test_dataset_json_declaring_gigabytes_is_named_as_dataset_json(tmp_path):
    path = tmp_path / "data.zip"
    png = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(png, "PNG")
    with zipfile.ZipFile(path, "w") as z:
        for i in range(2):
            z.writestr(f"img{i}.png", png.getvalue())
        z.writestr("dataset.json", b'{"labels": null}')
    data = bytearray(path.read_bytes())
    entry = data.rfind(b"PK\x01\x02")  # the central directory entry of the last member, dataset.json
    data[entry + 24:entry + 28] = (0xFFFFFFF0).to_bytes(4, "little")  # its size: 4 GiB
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="dataset.json declares 4,294,967,280 bytes, more than the 268,435,456 "
                                         "dataset.json may have"):
        ImageDataset(path, labels=True)
