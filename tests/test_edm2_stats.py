"""NVIDIA EDM2's statistics files: read as data (never as code), each block checked against its network, fed to the
metric of that network; written by `stats --out ref.pkl` in EDM2's layout, which EDM2's own arithmetic reads."""

import pickle

import numpy as np
import pytest
import scipy.linalg
import torch
from click.testing import CliRunner

from stylegan_core import InputError
from stylegan_metrics import evaluate, frechet_distance
from stylegan_metrics.edm2_stats import edm2_block, read_edm2_stats, write_edm2_stats
from stylegan_metrics.networks.registry import FeatureExtractor
from stylegan_metrics.reference import compute_reference_stats
from stylegan_metrics.stats import ReferenceStats
from stylegan_metrics_cli.main import main
from helpers import Quadrants, tiny_generator, write_disc_images

pytestmark = pytest.mark.usefixtures("one_thread")


class Wide(torch.nn.Module):
    """Quadrant means spread to 2048 features (Inception's width) by a fixed random projection: a cheap stand-in
    under Inception's name for the statistics files that name it."""

    def __init__(self):
        super().__init__()
        self.project = torch.nn.Linear(15, 2048)
        torch.nn.init.normal_(self.project.weight, generator=torch.Generator().manual_seed(0))
        torch.nn.init.zeros_(self.project.bias)

    def forward(self, x):
        return self.project(Quadrants()(x))


def as_inception() -> FeatureExtractor:
    return FeatureExtractor("inception-v3", Wide().eval(), fingerprint="wide")


def edm2_file(path, stats: ReferenceStats, block: str = "fid"):
    """A statistics file as EDM2's calculate_metrics.py saves it: pickle.dump of plain dicts of float64 arrays."""
    with open(path, "wb") as f:
        pickle.dump({"num_images": stats.n, block: {"mu": stats.mu, "sigma": stats.sigma}}, f)
    return path


def edm2_fd(a: dict, b: dict) -> float:
    """EDM2's calculate_metrics_from_stats arithmetic (scipy's sqrtm)."""
    s = scipy.linalg.sqrtm(np.dot(a["sigma"], b["sigma"]))
    return float(np.real(np.square(a["mu"] - b["mu"]).sum() + np.trace(a["sigma"] + b["sigma"] - s * 2)))


def test_our_frechet_distance_is_edm2s():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(500, 64)), rng.normal(size=(400, 64)) @ rng.normal(size=(64, 64)) * 0.3 + 0.2
    stats = [{"mu": x.mean(0), "sigma": np.cov(x, rowvar=False)} for x in (a, b)]
    ours = frechet_distance(stats[0]["mu"], stats[0]["sigma"], stats[1]["mu"], stats[1]["sigma"])
    assert ours == pytest.approx(edm2_fd(*stats), rel=1e-6) and ours > 1


def test_an_edm2_file_feeds_fid_like_the_same_statistics_as_npz(tmp_path, metrics_home):
    data = write_disc_images(tmp_path / "real", 12, size=16)
    ref = compute_reference_stats(data, features=as_inception(), device="cpu", progress=False)
    ref.save(tmp_path / "ref.npz")
    edm2 = edm2_file(tmp_path / "ref.pkl", ref)
    G = tiny_generator(16)
    runs = {p: evaluate(G, ["fid12_full_unbiased"], data=p, features=as_inception(), device="cpu", progress=False)[0]
            for p in (tmp_path / "ref.npz", edm2)}
    assert runs[edm2].value == runs[tmp_path / "ref.npz"].value
    assert runs[edm2].params["reference_n"] == 12
    [block] = read_edm2_stats(edm2).values()
    assert block.features == "inception-v3" and np.array_equal(block.sigma, ref.sigma) and block.fingerprint == ""


def test_a_block_of_another_network_or_a_hostile_file_is_refused(tmp_path, metrics_home):
    d = 1024  # DINOv2 ViT-L/14's width
    x = np.random.default_rng(0).normal(size=(40, d))
    dino = ReferenceStats(mu=x.mean(0), sigma=np.cov(x, rowvar=False), n=40, features="dinov2-vit-l14")
    path = edm2_file(tmp_path / "dino.pkl", dino, block="fd_dinov2")
    with pytest.raises(InputError, match=r"holds statistics of fd_dinov2 \(dinov2-vit-l14\), not of 'inception-v3'"):
        edm2_block(path, "inception-v3")
    wrong = edm2_file(tmp_path / "narrow.pkl", dino, block="fid")  # 1024 features under Inception's block
    with pytest.raises(InputError, match="narrow.pkl: fid: mu has 1,024 features but inception-v3 features have 2,048"):
        read_edm2_stats(wrong)

    class Boom:
        def __reduce__(self):
            return (print, ("ran code from the file",))
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"num_images": 2, "fid": Boom()}, f)
    with pytest.raises(InputError, match="refused to load"):
        read_edm2_stats(tmp_path / "evil.pkl")
    (tmp_path / "empty.pkl").write_bytes(pickle.dumps({"num_images": 3}))
    with pytest.raises(InputError, match="no statistics block"):
        read_edm2_stats(tmp_path / "empty.pkl")
    with pytest.raises(InputError, match="end in .pkl"):
        write_edm2_stats(tmp_path / "ref.npz", [dino])


def test_stats_writes_edm2s_layout_which_edm2s_arithmetic_reads(tmp_path, metrics_home, inception_weights):
    data = write_disc_images(tmp_path / "real", 6, size=16)
    out = tmp_path / "ref.pkl"
    r = CliRunner().invoke(main, ["stats", "--data", str(data), "--out", str(out), "--metrics", "fid", "--weights",
                                  f"inception-v3={inception_weights}", "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    with open(out, "rb") as f:
        written = pickle.load(f)  # as EDM2 reads it
    assert set(written) == {"num_images", "fid"} and written["num_images"] == 6
    npz = compute_reference_stats(data, weights=inception_weights, device="cpu", progress=False)  # the cache
    assert np.array_equal(written["fid"]["mu"], npz.mu) and np.array_equal(written["fid"]["sigma"], npz.sigma)
    r = CliRunner().invoke(main, ["stats", "--data", str(data), "--out", str(tmp_path / "ref.npz"), "--metrics", "fid"])
    assert r.exit_code == 2 and "--metrics chooses the blocks of an EDM2 .pkl" in r.output
    r = CliRunner().invoke(main, ["stats", "--data", str(data), "--out", str(out), "--metrics", "fid,kid"])
    assert r.exit_code == 2 and "fid, fd_dinov2" in r.output
    r = CliRunner().invoke(main, ["stats", "--data", str(data), "--out", str(out), "--features", "toyfaces"])
    assert r.exit_code == 2 and "--features chooses the network of a .npz" in r.output
