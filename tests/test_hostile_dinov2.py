"""Hostile inputs to EDM2 statistics files, generated-side statistics and the k-NN metrics: each refused in one
InputError (the CLI: one line, exit status 2) before a wrong number is computed or a user's file is replaced."""

import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from stylegan_core import InputError
from stylegan_metrics import evaluate
from stylegan_metrics.edm2_stats import read_edm2_stats, write_edm2_stats
from stylegan_metrics.formulas.density_coverage import density_coverage_from_arrays
from stylegan_metrics.formulas.precision_recall import precision_recall_from_arrays
from stylegan_metrics.stats import ReferenceStats
from helpers import Quadrants, invoke, one_line_error, write_disc_images

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RNG = np.random.default_rng(0)
X = RNG.normal(size=(300, 2048))
MU, SIGMA = X.mean(0), np.cov(X[:100], rowvar=False)


def edm2(**changes) -> dict:
    content = {"num_images": 100, "fid": {"mu": MU, "sigma": SIGMA}}
    content.update(changes)
    return content


def dumped(path: Path, content, protocol: int = 4) -> Path:
    path.write_bytes(pickle.dumps(content, protocol=protocol))
    return path


HOSTILE = {
    "object_mu": lambda p: dumped(p, edm2(fid={"mu": MU.astype(object), "sigma": SIGMA})),
    "complex": lambda p: dumped(p, edm2(fid={"mu": MU.astype(complex), "sigma": SIGMA.astype(complex)})),
    "strings": lambda p: dumped(p, edm2(fid={"mu": "mu", "sigma": "sigma"})),
    "nested": lambda p: dumped(p, edm2(fid={"mu": {"mu": MU}, "sigma": SIGMA})),
    "zero_d": lambda p: dumped(p, edm2(fid={"mu": np.array(1.0), "sigma": np.array(1.0)})),
    "nan": lambda p: dumped(p, edm2(fid={"mu": np.where(np.arange(2048) == 3, np.nan, MU), "sigma": SIGMA})),
    "non_symmetric": lambda p: dumped(p, edm2(fid={"mu": MU, "sigma": SIGMA + np.triu(np.ones_like(SIGMA))})),
    "negative_definite": lambda p: dumped(p, edm2(fid={"mu": MU, "sigma": -SIGMA})),
    "wide_mu": lambda p: dumped(p, edm2(fid={"mu": np.zeros(10**6, np.float32), "sigma": SIGMA})),
    "one_block_broken": lambda p: dumped(p, edm2(fd_dinov2={"mu": np.zeros(5), "sigma": np.eye(4)})),
    "n_negative": lambda p: dumped(p, edm2(num_images=-5)),
    "n_huge": lambda p: dumped(p, edm2(num_images=10**30)),
    "n_beyond_int64": lambda p: dumped(p, edm2(num_images=np.uint64(2**63 + 5))),
    "n_float": lambda p: dumped(p, edm2(num_images=100.0)),
    "n_bool": lambda p: dumped(p, edm2(num_images=True)),
    "n_array": lambda p: dumped(p, edm2(num_images=np.array([100]))),
    "truncated": lambda p: p.write_bytes(pickle.dumps(edm2())[:50_000]),
    "huge_opcode": lambda p: p.write_bytes(b"\x80\x04\x8e" + (2**60).to_bytes(8, "little") + b"abc."),
    "zip": lambda p: zipfile.ZipFile(p, "w").close(),
    "png": lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100)),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_edm2_files_are_refused_in_one_input_error(tmp_path, case):
    path = tmp_path / "ref.pkl"
    HOSTILE[case](path)
    with pytest.raises(InputError, match="ref.pkl"):
        read_edm2_stats(path)


def test_stats_never_replaces_a_pkl_that_is_not_edm2_statistics(tmp_path, metrics_home):
    data = write_disc_images(tmp_path / "real", 4, size=16)
    network = shutil.copy(FIXTURES / "nvidia_ada_conditional.pkl", tmp_path / "network.pkl")
    image = tmp_path / "image.pkl"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    for path in (Path(network), image):
        before = path.read_bytes()
        r = invoke("stats", "--data", data, "--out", path, "--metrics", "fid", "--device", "cpu", "--no-progress")
        one_line_error(r, "is not EDM2 statistics", "refusing to replace it")
        assert path.read_bytes() == before
        with pytest.raises(InputError, match="is not EDM2 statistics"):
            write_edm2_stats(path, [ReferenceStats(mu=MU, sigma=SIGMA, n=100, features="inception-v3")])
        assert path.read_bytes() == before
    old = dumped(tmp_path / "old.pkl", edm2(fid={"mu": MU, "sigma": -SIGMA}))  # statistics, even damaged ones, may go
    write_edm2_stats(old, [ReferenceStats(mu=MU, sigma=SIGMA, n=100, features="inception-v3")])
    assert read_edm2_stats(old)["inception-v3"].n == 100


def test_stats_never_replaces_an_npz_that_is_not_statistics(tmp_path, metrics_home):
    data = write_disc_images(tmp_path / "real", 4, size=16)
    arrays = tmp_path / "arrays.npz"
    np.savez(arrays, weights=np.arange(10))
    before = arrays.read_bytes()
    r = invoke("stats", "--data", data, "--out", arrays, "--features", "toyfaces", "--device", "cpu", "--no-progress")
    one_line_error(r, "is not statistics (no mu and sigma)", "refusing to replace it")
    assert arrays.read_bytes() == before
    ours = tmp_path / "ours.npz"
    for _ in range(2):  # statistics are replaced by statistics
        r = invoke("stats", "--data", data, "--out", ours, "--features", "toyfaces", "--device", "cpu", "--no-progress")
        assert r.exit_code == 0, r.output


def test_generated_statistics_of_another_count_than_the_name_are_refused(tmp_path, metrics_home):
    x = RNG.normal(size=(40, 15))
    for name, rows in (("gen", x[:8]), ("ref", x[8:])):
        ReferenceStats(mu=rows.mean(0), sigma=np.cov(rows, rowvar=False), n=len(rows),
                       features="Quadrants").save(tmp_path / f"{name}.npz")
    options = dict(gen=tmp_path / "gen.npz", data=tmp_path / "ref.npz", features=Quadrants(), device="cpu",
                   progress=False)
    with pytest.raises(InputError, match="holds statistics of 8 generated images, but fid50_full names 50"):
        evaluate(None, ["fid50_full"], **options)
    [r] = evaluate(None, ["fid8_full"], **options)
    assert r.metric == "fid8_full" and np.isfinite(r.value)
    [bare] = evaluate(None, ["fid"], **options)  # a bare name counts the statistics' images
    assert bare.metric == "fid8_full" and bare.value == r.value


@pytest.mark.parametrize("formula", [density_coverage_from_arrays, precision_recall_from_arrays])
def test_features_whose_distances_overflow_float32_are_refused(formula):
    real, gen = RNG.normal(size=(20, 8)), RNG.normal(size=(20, 8))
    with pytest.raises(InputError, match="overflow float32"):
        formula(real * 1e30, gen * 1e30, k=3)
    with pytest.raises(InputError, match="overflow float32"):
        formula(real, gen * 1e19, k=3)
    assert all(np.isfinite(formula(real * 1e9, gen * 1e9, k=3)))


def test_duplicate_features_and_k_against_the_count():
    same = np.ones((20, 8))
    density, coverage = density_coverage_from_arrays(same, same, k=3)  # every ball of radius 0: empty, as prdc's
    assert (density, coverage) == (0.0, 0.0)
    assert all(np.isfinite(density_coverage_from_arrays(RNG.normal(size=(20, 8)), same, k=3)))
    real = RNG.normal(size=(20, 8))
    assert all(np.isfinite(density_coverage_from_arrays(real, real, k=19)))
    for k in (0, 20, 10**9):
        with pytest.raises(InputError, match="k must be|at least"):
            density_coverage_from_arrays(real, real, k=k)
    nan = real.copy()
    nan[3, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        density_coverage_from_arrays(real, nan, k=3)


def test_a_constant_feature_network_gives_density_and_coverage_with_a_warning(tmp_path, metrics_home, monkeypatch):
    import torch

    from stylegan_metrics.engine.metric import MetricWarning
    from stylegan_metrics.networks.registry import FEATURE_NETWORKS
    from helpers import tiny_generator

    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.ones(x.shape[0], 4)
    monkeypatch.setitem(FEATURE_NETWORKS, "vgg16-fc2", lambda weights, device: (Constant(), "constant"))
    data = write_disc_images(tmp_path / "real", 8, size=16)
    with pytest.warns(MetricWarning, match="one vector for every reference image, so every ball has radius 0"):
        [r] = evaluate(tiny_generator(16), ["dc85_full"], data=data, device="cpu", progress=False)
    assert r.results == {"dc85_full_density": 0.0, "dc85_full_coverage": 0.0}
