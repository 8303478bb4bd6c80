"""Density and coverage: by hand on a line, against prdc's compute_prdc fed the same arrays (any block size, with
and without ties), bounded blocks, guards; the metric by name on the engine, sharing precision/recall's pass."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from stylegan_core.data.datasets import ImageDataset
from stylegan_core.errors import InputError
from stylegan_metrics import density_coverage_from_arrays, evaluate
from stylegan_metrics.engine.sampling import generate_batches
from stylegan_metrics.metrics import build_metric, build_metrics
from stylegan_metrics.networks.registry import FEATURE_NETWORKS, build_feature_extractor
from helpers import CrashingQuadrants, recorded_cdist_shapes, tiny_generator, write_disc_images

CPU = torch.device("cpu")
BLOCKS = [(10_000, 10_000), (7, 5), (13, 64), (1, 1)]


def prdc_density_coverage(real: np.ndarray, gen: np.ndarray, k: int) -> tuple[float, float]:
    from prdc import compute_prdc

    out = compute_prdc(real, gen, nearest_k=k)  # prints the two counts
    return float(out["density"]), float(out["coverage"])


def test_by_hand_on_a_line():
    # real {0, 1, 3, 9}. k = 1: radii 1, 1, 2, 6 -> open balls (-1, 1), (0, 2), (1, 5), (3, 15). Generated 0.5 lies
    # in 2 balls, 2.5 in 1, 16 and 20 in none: density 3 / (1 * 4). Nearest generated of each real point: 0.5 at
    # 0.5, 0.5 at 0.5, 2.5 at 0.5, 2.5 at 6.5 (not below 6): coverage 3/4.
    real, gen = np.array([[0.0], [1.0], [3.0], [9.0]]), np.array([[0.5], [2.5], [16.0], [20.0]])
    assert density_coverage_from_arrays(real, gen, k=1) == (0.75, 0.75)
    # k = 2: radii 3, 2, 3, 8 -> (-3, 3), (-1, 3), (0, 6), (1, 17): 0.5 in 3, 2.5 in 4, 16 in 1, 20 in none,
    # density 8 / (2 * 4); the same nearest distances are now all below the radii: coverage 1
    assert density_coverage_from_arrays(real, gen, k=2) == (1.0, 1.0)


def test_a_point_on_a_boundary_is_outside():
    # k = 1, real {0, 2, 4}: radii 2, 2, 2. Generated 6 lies exactly 2 from 4: in no ball, and it covers nothing
    # (precision/recall's balls, closed, would hold it). Generated 3 lies 1 from 2 and from 4: 2 balls, and covers
    # 2 and 4; 0's nearest generated (3) is 3 away.
    real = np.array([[0.0], [2.0], [4.0]])
    assert density_coverage_from_arrays(real, np.array([[6.0]]), k=1) == (0.0, 0.0)
    assert density_coverage_from_arrays(real, np.array([[6.0], [3.0]]), k=1) == (2 / 2, 2 / 3)


@pytest.mark.parametrize("row_batch_size, col_batch_size", BLOCKS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equals_prdc_on_gaussian_features(row_batch_size, col_batch_size, dtype):
    """Sizes that are no multiple of the blocks, blocks smaller than the arrays. No distance lies within float32
    rounding of a radius it is compared with, so prdc's float64 or upcast float32 distances and ours agree on
    every comparison; density may differ in the last bit (prdc: (1/k) * mean, here count / (k M))."""
    rng = np.random.RandomState(1)
    real = rng.randn(97, 16).astype(dtype)
    gen = (rng.randn(83, 16) * 0.8 + 0.3).astype(dtype)
    r64, g64 = real.astype(np.float64), gen.astype(np.float64)
    for k in (1, 3, 5):
        radii = np.sort(cdist(r64, r64), axis=1)[:, k]                 # [N]
        assert (np.abs(cdist(g64, r64) / radii - 1) > 1e-4).all()
        density, coverage = prdc_density_coverage(real, gen, k)
        assert 0.3 < coverage < 1 and density > 0.5
        got = density_coverage_from_arrays(real, gen, k=k, row_batch_size=row_batch_size,
                                           col_batch_size=col_batch_size)
        assert got[0] == pytest.approx(density, rel=0, abs=1e-12) and got[1] == coverage


@pytest.mark.parametrize("row_batch_size, col_batch_size", BLOCKS[:3])
def test_equals_prdc_on_a_grid_with_ties(row_batch_size, col_batch_size):
    """Small integer coordinates: squared distances are exact integers in float32 and float64, so points on a
    ball's boundary (and duplicate points) are decided as prdc decides them: strictly inside or not at all."""
    rng = np.random.RandomState(0)
    real = rng.randint(-3, 4, (60, 6)).astype(np.float32)
    gen = rng.randint(-2, 5, (45, 6)).astype(np.float32)
    r64, g64 = real.astype(np.float64), gen.astype(np.float64)
    for k in (1, 3, 5):
        radii = np.sort(cdist(r64, r64), axis=1)[:, k]
        between = cdist(g64, r64)                                      # [M, N]
        assert (between == radii).any() and (between.min(axis=0) == radii).any()  # ties that decide
        density, coverage = prdc_density_coverage(real, gen, k)
        got = density_coverage_from_arrays(real, gen, k=k, row_batch_size=row_batch_size,
                                           col_batch_size=col_batch_size)
        assert got[0] == pytest.approx(density, rel=0, abs=1e-12) and got[1] == coverage
        assert got[0] != (between <= radii).sum() / (k * 45)             # closed balls would give another number


def test_blocks_bound_the_distance_matrices(monkeypatch):
    rng = np.random.RandomState(3)
    real, gen = rng.randn(50, 4), rng.randn(40, 4) + 0.3
    expected = density_coverage_from_arrays(real, gen)
    shapes = recorded_cdist_shapes(monkeypatch)
    assert density_coverage_from_arrays(real, gen, row_batch_size=9, col_batch_size=11) == expected
    assert max(r for r, _ in shapes) <= 9 and max(c for _, c in shapes) <= 11


def test_input_types():
    rng = np.random.RandomState(4)
    real, gen = rng.randn(30, 5), rng.randn(25, 5)
    expected = density_coverage_from_arrays(real, gen)
    assert density_coverage_from_arrays(torch.from_numpy(real), torch.from_numpy(gen).float()) == expected
    assert density_coverage_from_arrays(real, gen, device="cpu") == expected


@pytest.mark.parametrize("real, gen, kwargs, message", [
    (np.zeros((5, 2)), np.zeros((9, 2)), {}, "real features has 5 rows, at least 6"),
    (np.zeros((9, 2)), np.zeros((0, 2)), {}, "generated features has 0 rows, at least 1"),
    (np.zeros((9, 2)), np.zeros((9, 3)), {}, "differ in width"),
    (np.zeros((9, 2)), np.array([[np.inf, 0.0]] * 9), {}, "NaN or Inf"),
    (np.zeros((9, 2)), np.zeros((9, 2)), {"k": 0}, "k must be"),
    (np.zeros((9, 2)), np.zeros((9, 2)), {"k": 2.0}, "k must be"),
    (np.zeros((9, 2)), np.zeros((9, 2)), {"row_batch_size": 0}, "row_batch_size"),
])
def test_bad_input_is_an_input_error(real, gen, kwargs, message):
    with pytest.raises(InputError, match=message):
        density_coverage_from_arrays(real, gen, **kwargs)


def test_names():
    full, first = build_metric("dc50k5_full"), build_metric("dc50k5")
    assert (full.num, full.max_real, full.k, first.max_real, first.k) == (50_000, 200_000, 5, 50_000, 5)
    assert build_metric("dc1k3").k == 3 and build_metric("dc1k3").network == "vgg16-fc2"
    with pytest.raises(InputError, match="k .* must be at least 1"):
        build_metric("dc80_full")
    with pytest.raises(InputError, match="5 generated images.*at least 6 images"):
        build_metric("dc55_full")


def test_the_bare_name_means_every_generated_file(tmp_path):
    gen = write_disc_images(tmp_path / "gen", 8)
    [metric] = build_metrics("dc", gen=gen)
    assert (metric.name, metric.num, metric.k, metric.max_real) == ("dc85_full", 8, 5, 200_000)
    with pytest.raises(InputError, match="'dc' without a count.*dc50k5_full"):
        build_metrics("dc")


def test_a_small_reference_is_refused_before_any_network(tmp_path):
    few = write_disc_images(tmp_path / "few", 5)
    # no weights file is given: reaching the VGG16 network would fail differently (no download here)
    with pytest.raises(InputError, match="reference holds 5 images.*at least 6"):
        evaluate(tiny_generator(16), ["dc105_full"], data=few, device="cpu", progress=False)


@pytest.fixture
def stand_in(monkeypatch):
    """A cheap network in vgg16-fc2's place (its calls counted): VGG16 at 224x224 takes seconds per image on a
    CPU, and test_precision_recall.py checks the network itself."""
    net = CrashingQuadrants()
    monkeypatch.setitem(FEATURE_NETWORKS, "vgg16-fc2", lambda weights, device: (net, "vgg16-fc2:stand-in"))
    return net


def test_by_name_equals_the_formula_on_features_computed_apart(tmp_path, metrics_home, stand_in):
    G, folder = tiny_generator(16, seed=3), write_disc_images(tmp_path / "real", 24, size=16)
    [result] = evaluate(G, ["dc205"], data=folder, device="cpu", progress=False)  # 20 generated, the first 20 reals
    extractor = build_feature_extractor("vgg16-fc2", device=CPU)
    [batch] = generate_batches(G, 20, batch_size=20, seed=0, device=CPU)
    dataset = ImageDataset(folder, channels=3)
    real = extractor(torch.stack([dataset[i][0] for i in range(20)])).numpy()
    density, coverage = density_coverage_from_arrays(real, extractor(batch.images).numpy(), k=5)
    assert 0 < coverage < 1 and density > 0
    assert result.results == {"dc205_density": density, "dc205_coverage": coverage}
    assert (result.params["features"], result.params["k"], result.params["reference_n"]) == ("vgg16-fc2", 5, 20)


def test_shares_precision_recalls_pass_and_network_calls(tmp_path, metrics_home, monkeypatch, stand_in):
    """Density/coverage with precision/recall on the same images: one generation pass and as many calls of the
    feature network as precision/recall alone, and each gives what it gives alone."""
    G, folder = tiny_generator(16, seed=2), write_disc_images(tmp_path / "real", 20, size=16)

    def run(names):
        synthesized = []
        hook = G.synthesis.register_forward_hook(lambda module, args, out: synthesized.append(out.shape[0]))
        stand_in.calls = 0
        try:
            results = evaluate(G, names, data=folder, device="cpu", progress=False, batch_size=20)
        finally:
            hook.remove()
        return results, sum(synthesized), stand_in.calls

    both, synthesized, calls = run(["pr203", "dc205"])
    assert synthesized == 20 and calls == 4, calls  # 20 generated and 20 reference images, 16 rows a call
    for i, name in enumerate(("pr203", "dc205")):
        monkeypatch.setenv("STYLEGAN_METRICS_HOME", str(tmp_path / f"home-{name}"))  # no reference features cached
        alone = run([name])
        assert alone[1:] == (synthesized, calls)
        assert alone[0][0].results == both[i].results
    assert set(both[1].results) == {"dc205_density", "dc205_coverage"}
