"""One reference service per evaluation: the dataset opened and fingerprinted once, the generator hashed once, every
reference image through each network once for all metrics, statistics derived from kept features equal to a pass
of their own."""

from pathlib import Path

import numpy as np
import pytest

import stylegan_metrics.engine.reference_images as reference_images
from stylegan_core.data.datasets import ImageDataset
from stylegan_core.formats.checkpoint import load_generator
from stylegan_metrics import evaluate
from helpers import CrashingQuadrants, mean_squared_l2, tiny_generator, write_disc_images, write_zip_dataset

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.usefixtures("one_thread")
OPTIONS = dict(batch_size=4, chunk_size=4, device="cpu", progress=False)


@pytest.fixture
def counted(monkeypatch):
    """Counts of ImageDataset openings (by path), of file fingerprints and of dataset.json reads."""
    counts = {"opened": [], "entries": 0, "labels": 0}
    init, entries, labels = ImageDataset.__init__, reference_images.file_entries, ImageDataset._read_labels

    def opening(self, path, *args, **kwargs):
        counts["opened"].append(Path(path))
        init(self, path, *args, **kwargs)

    def fingerprinting(dataset):
        counts["entries"] += 1
        return entries(dataset)

    def reading(self, has_json):
        counts["labels"] += 1
        return labels(self, has_json)
    monkeypatch.setattr(ImageDataset, "__init__", opening)
    monkeypatch.setattr(reference_images, "file_entries", fingerprinting)
    monkeypatch.setattr(ImageDataset, "_read_labels", reading)
    return counts


def hashed_once(G) -> list:
    """Calls of G.state_dict (what hashing G reads), recorded in the returned list."""
    calls, original = [], G.state_dict
    G.state_dict = lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs)
    return calls


def test_fid_kid_and_ppl_open_fingerprint_and_hash_once(tmp_path, metrics_home, counted):
    data = write_disc_images(tmp_path / "real", 12, size=16)
    G, net = tiny_generator(16), CrashingQuadrants()
    hashes = hashed_once(G)
    results = evaluate(G, ["fid12_full", "kid12_full", "ppl8_wend"], data=data, features=net,
                       similarity=mean_squared_l2, **OPTIONS)
    assert [r.metric for r in results] == ["fid12_full", "kid12_full", "ppl8_wend"]
    assert counted["opened"] == [data] and counted["entries"] == 1
    assert len(hashes) == 1
    assert net.calls == 3 + 3  # 12 reference images and 12 generated ones, 4 per call, each once for FID and KID
    assert len(list((metrics_home / "stats").glob("*.npy"))) == 1  # KID's kept features
    assert len(list((metrics_home / "stats").glob("*.npz"))) == 1  # FID's statistics, summed from them


def test_a_conditional_generator_reads_the_dataset_and_its_labels_once(tmp_path, metrics_home, counted):
    G = load_generator(FIXTURES / "nvidia_ada_conditional.pkl")
    images = [np.full((16, 16, 3), 20 * i, np.uint8) for i in range(12)]
    data = write_zip_dataset(tmp_path / "data.zip", images, labels=[i % 4 for i in range(12)])
    counted["opened"].clear()
    evaluate(G, ["fid12_full", "kid12_full", "ppl6_wend"], data=data, features=CrashingQuadrants(),
             similarity=mean_squared_l2, **OPTIONS)
    assert counted["opened"] == [data] and counted["entries"] == 1 and counted["labels"] == 1


@pytest.mark.parametrize("names", [["kid12_full", "fid12_full"], ["fid8", "kid12_full"]])
def test_statistics_from_kept_features_equal_a_pass_of_their_own(tmp_path, metrics_home, names):
    """FID beside KID sums KID's kept reference rows (all of them, or the first 8 for fid8): the same numbers as
    FID alone, whose statistics come from a pass of their own."""
    data = write_disc_images(tmp_path / "real", 12, size=16)
    fid = next(n for n in names if n.startswith("fid"))
    [alone] = evaluate(tiny_generator(16), [fid], data=data, features=CrashingQuadrants(), **OPTIONS)
    for path in (metrics_home / "stats").iterdir():
        path.unlink()
    net = CrashingQuadrants()
    both = evaluate(tiny_generator(16), names, data=data, features=net, **OPTIONS)
    assert both[names.index(fid)].value == alone.value
    assert net.calls == 3 + 3  # one reference pass (KID's 12), one generated pass
