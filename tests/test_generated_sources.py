"""The generated side as files (folders, zips, statistics: `--gen`) and conditional generators (labels drawn per
index from the reference dataset's labels, or one `--class`)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from stylegan_core import InputError, load_generator
from stylegan_metrics import evaluate, fid
from helpers import labels_of
from stylegan_metrics.engine.sampling import generate_batches
from stylegan_metrics.stats import ReferenceStats
from stylegan_metrics_cli.main import main
from helpers import tiny_generator, write_disc_images, write_zip_dataset

FIXTURES = Path(__file__).parent / "fixtures"
CPU = torch.device("cpu")


class Means(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.adaptive_avg_pool2d(x.float() / 255, 2).flatten(1)  # [N, 12]


def write_generated(G, folder: Path, num: int) -> Path:
    """G's samples 0..num-1 (seed 0) as PNGs: the same images the engine generates."""
    folder.mkdir(parents=True)
    for b in generate_batches(G, num, batch_size=num, seed=0, device=CPU):
        for i, image in enumerate(b.images):
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{b.start + i:04d}.png")
    return folder


def test_a_folder_of_generated_images_gives_the_generators_fid(tmp_path, metrics_home):
    G, real = tiny_generator(16, seed=5), write_disc_images(tmp_path / "real", 10)
    folder = write_generated(G, tmp_path / "gen", 24)
    from_generator = fid(G, real, num_gen=24, features=Means(), device="cpu", progress=False)
    from_folder = fid(str(folder), real, num_gen=None, features=Means(), device="cpu", progress=False)
    assert from_folder.value == from_generator.value and from_folder.metric == "fid24_full_unbiased"

    out = tmp_path / "m.jsonl"
    r = CliRunner().invoke(main, ["evaluate", "--gen", str(folder), "--data", str(real), "--metrics", "fid",
                                  "--features", "toyfaces", "--device", "cpu", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    line = json.loads(out.read_text())
    assert line["metric"] == "fid24_full" and line["snapshot_pkl"] == str(folder)
    r = CliRunner().invoke(main, ["fid", "--gen", str(folder), "--data", str(real), "--features", "toyfaces",
                                  "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0 and "fid24_full_unbiased" in r.output


def test_statistics_on_both_sides_and_refusals(tmp_path, metrics_home):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 4)), rng.normal(0.5, 1, size=(60, 4))
    for name, x in (("a", a), ("b", b)):
        ReferenceStats(mu=x.mean(0), sigma=np.cov(x, rowvar=False), n=len(x), features="Means").save(tmp_path / f"{name}.npz")
    [r] = evaluate(None, ["fid"], gen=tmp_path / "a.npz", data=tmp_path / "b.npz", features=Means(), device="cpu",
                   progress=False)
    from stylegan_metrics import frechet_distance

    expected = frechet_distance(a.mean(0), np.cov(a, rowvar=False, bias=True), b.mean(0), np.cov(b, rowvar=False, bias=True))
    assert r.metric == "fid50_full" and r.value == pytest.approx(expected, rel=1e-9)
    folder = write_disc_images(tmp_path / "few", 5)
    with pytest.raises(InputError, match="holds 5 images, fewer than the 20"):
        evaluate(None, ["fid20_full"], gen=folder, data=tmp_path / "b.npz", features=Means(), device="cpu")
    with pytest.raises(InputError, match="needs a generator"):
        evaluate(None, ["ppl_wend"], gen=folder, device="cpu")
    with pytest.raises(InputError, match="either a generator or generated images"):
        evaluate(tiny_generator(16), ["fid5_full"], gen=folder, data=tmp_path / "b.npz", device="cpu")


def test_conditional_generator_draws_labels_from_the_data(tmp_path, metrics_home):
    G = load_generator(FIXTURES / "nvidia_ada_conditional.pkl")
    images = [np.full((16, 16, 3), 40 * i, np.uint8) for i in range(6)]
    data = write_zip_dataset(tmp_path / "data.zip", images, labels=[0, 1, 2, 3, 1, 2])
    c_of = labels_of(G, data=data, seed=0)
    c = c_of(0, 40)
    assert c.shape == (40, 4) and set(c.argmax(1).tolist()) <= {0, 1, 2, 3} and (c.sum(1) == 1).all()
    assert torch.equal(c_of(7, 3), c[7:10])  # sample i's label depends only on (seed, i)
    [a] = evaluate(G, ["fid12_full"], data=data, features=Means(), device="cpu", progress=False, batch_size=5)
    [b] = evaluate(G, ["fid12_full"], data=data, features=Means(), device="cpu", progress=False, batch_size=12)
    assert a.value == b.value and np.isfinite(a.value)
    [one] = evaluate(G, ["fid12_full"], data=data, features=Means(), device="cpu", progress=False, class_index=2)
    assert one.value != a.value
    with pytest.raises(InputError, match="dataset.json"):
        evaluate(G, ["fid12_full"], data=write_disc_images(tmp_path / "unlabelled", 6), features=Means(),
                 device="cpu", progress=False)
    with pytest.raises(InputError, match="classes 0..3"):
        labels_of(G, data=data, seed=0, class_index=4)
