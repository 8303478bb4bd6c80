"""Precision/recall: k-NN manifolds by hand, exactly against a brute-force full distance matrix at any block
size, against torch-fidelity, bounded blocks, devices, guards; and the vgg16-fc2 features vs torch-fidelity."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from stylegan_core.errors import InputError
from stylegan_metrics.formulas.precision_recall import precision_recall_from_arrays
from stylegan_metrics.networks.registry import FEATURE_NETWORKS, build_feature_extractor
from stylegan_metrics.testing import write_vgg16_weights
from helpers import recorded_cdist_shapes

BLOCKS = [(10_000, 10_000), (7, 5), (1, 1), (13, 64)]


def brute_force(real: np.ndarray, gen: np.ndarray, k: int) -> tuple[float, float]:
    """The whole distance matrices at once, in float64: radius = (k+1)-th smallest distance of a row (the
    zero distance to itself included), a probe counts if within the radius of some manifold point."""

    def coverage(manifold, probes):
        radii = np.sort(cdist(manifold, manifold), axis=1)[:, k]       # [N]
        return float(np.mean((cdist(probes, manifold) <= radii[None, :]).any(axis=1)))

    return coverage(real, gen), coverage(gen, real)


def test_by_hand_one_dimension():
    # k=1. real {0, 1, 3}: radii 1, 1, 2 -> balls [-1, 1], [0, 2], [1, 5]; generated {0.5, 4.9, 6, -1.5}:
    # 0.5 and 4.9 inside -> precision 2/4. generated radii 2, 2, 1.1, 1.1 -> balls [-1.5, 2.5], [-3.5, 0.5],
    # [3.8, 6], [4.9, 7.1]: real 0 and 1 inside, 3 not -> recall 2/3.
    real, gen = np.array([[0.0], [1.0], [3.0]]), np.array([[0.5], [4.9], [6.0], [-1.5]])
    assert precision_recall_from_arrays(real, gen, k=1) == (0.5, 2 / 3)
    # k=2: real radii 3, 2, 3 -> union [-3, 6] holds all four generated; generated radii 4.4, 4.4, 5.5, 6.4
    # reach every real point
    assert precision_recall_from_arrays(real, gen, k=2) == (1.0, 1.0)


def test_a_probe_on_the_boundary_counts():
    # k=1, real {0, 2, 4}: radii 2, 2, 2. Generated 6 lies exactly 2 from 4 (inside), 7 lies 3 away (outside).
    real, gen = np.array([[0.0], [2.0], [4.0]]), np.array([[6.0], [7.0]])
    assert precision_recall_from_arrays(real, gen, k=1) == (0.5, 0.0)


@pytest.mark.parametrize("row_batch_size, col_batch_size", BLOCKS)
def test_exactly_brute_force_on_a_grid_with_ties(row_batch_size, col_batch_size):
    """Small integer coordinates: squared distances are exact integers in float32 too, so every tie (duplicate
    points, probes on ball boundaries) is decided as in exact arithmetic, at every block size."""
    rng = np.random.RandomState(0)
    real = rng.randint(-3, 4, (60, 6)).astype(np.float32)
    gen = rng.randint(-2, 5, (45, 6)).astype(np.float32)
    for k in (1, 3, 5):
        expected = brute_force(real.astype(np.float64), gen.astype(np.float64), k)
        assert 0 < expected[0] < 1 and 0 < expected[1] < 1
        got = precision_recall_from_arrays(real, gen, k=k, row_batch_size=row_batch_size, col_batch_size=col_batch_size)
        assert got == expected


@pytest.mark.parametrize("row_batch_size, col_batch_size", BLOCKS[:2])
def test_exactly_brute_force_on_gaussian_features(row_batch_size, col_batch_size):
    rng = np.random.RandomState(1)
    real = rng.randn(90, 16).astype(np.float32)
    gen = (rng.randn(70, 16) + 0.5).astype(np.float32)
    r64, g64 = real.astype(np.float64), gen.astype(np.float64)
    for manifold, probes in ((r64, g64), (g64, r64)):  # no comparison within float32 rounding of its radius
        radii = np.sort(cdist(manifold, manifold), axis=1)[:, 3]
        assert (np.abs(cdist(probes, manifold) / radii - 1) > 1e-4).all()
    expected = brute_force(r64, g64, 3)
    assert 0.2 < expected[0] < 0.9 and 0.2 < expected[1] < 0.9 and expected[0] != expected[1]
    got = precision_recall_from_arrays(real, gen, k=3, row_batch_size=row_batch_size, col_batch_size=col_batch_size)
    assert got == expected


def test_equals_torch_fidelity():
    """torch-fidelity's whole-matrix version, generated features first."""
    from torch_fidelity.metric_prc import calculate_precision_recall_full

    rng = np.random.RandomState(2)
    real = torch.from_numpy(rng.randn(80, 12).astype(np.float32))
    gen = torch.from_numpy((rng.randn(60, 12) * 0.6).astype(np.float32))
    theirs = calculate_precision_recall_full(gen, real, neighborhood=3)
    ours = precision_recall_from_arrays(real, gen, k=3, row_batch_size=16, col_batch_size=16)
    assert ours == pytest.approx(theirs, abs=1e-6)
    assert ours[0] > 0.9 and ours[1] < 0.8  # a narrow generator: precise, not diverse


def test_blocks_bound_the_distance_matrices(monkeypatch):
    rng = np.random.RandomState(3)
    real, gen = rng.randn(50, 4), rng.randn(40, 4) + 0.3
    expected = precision_recall_from_arrays(real, gen, k=3)
    shapes = recorded_cdist_shapes(monkeypatch)
    assert precision_recall_from_arrays(real, gen, k=3, row_batch_size=9, col_batch_size=11) == expected
    assert max(r for r, _ in shapes) <= 9 and max(c for _, c in shapes) <= 11
    assert len(shapes) > 2 * (50 // 9) * (50 // 11)  # every manifold block was visited


def test_input_types_and_devices():
    rng = np.random.RandomState(4)
    real, gen = rng.randn(30, 5), rng.randn(25, 5)
    expected = precision_recall_from_arrays(real, gen)
    assert precision_recall_from_arrays(torch.from_numpy(real), torch.from_numpy(gen).float()) == expected
    assert precision_recall_from_arrays(real, gen, device="cpu") == expected
    if torch.cuda.is_available():
        on_gpu = precision_recall_from_arrays(torch.from_numpy(real).cuda(), gen)
        assert on_gpu == pytest.approx(expected, abs=1 / 25)  # float32 rounding may move a boundary probe


@pytest.mark.parametrize("real, gen, kwargs, message", [
    (np.zeros((3, 2)), np.zeros((9, 2)), {}, "real features has 3 rows, at least 4"),
    (np.zeros((9, 2)), np.zeros((2, 2)), {"k": 2}, "generated features has 2 rows, at least 3"),
    (np.zeros((9, 2)), np.zeros((9, 3)), {}, "differ in width"),
    (np.zeros((9, 2)), np.array([[np.nan, 0.0]] * 9), {}, "NaN or Inf"),
    (np.array([[1e39, 0.0]] * 9), np.zeros((9, 2)), {}, "NaN or Inf"),  # beyond float32
    (np.zeros((9, 2, 1)), np.zeros((9, 2)), {}, r"matrix \[N, D\]"),
    (np.zeros((9, 2)), np.zeros((9, 2)), {"k": 0}, "k must be"),
    (np.zeros((9, 2)), np.zeros((9, 2)), {"row_batch_size": 0}, "row_batch_size"),
    (np.zeros((9, 2)), np.zeros((9, 2)), {"col_batch_size": 2.5}, "col_batch_size"),
])
def test_bad_input_is_an_input_error(real, gen, kwargs, message):
    with pytest.raises(InputError, match=message):
        precision_recall_from_arrays(real, gen, **kwargs)


@pytest.fixture(scope="module")
def vgg16_fc2_weights(tmp_path_factory):
    return write_vgg16_weights(tmp_path_factory.mktemp("weights") / "vgg16-fc2-test.pth", classifier=True)


def test_vgg16_fc2_features_equal_torch_fidelity(vgg16_fc2_weights):
    """torch-fidelity's `vgg16` extractor (NVIDIA's VGG16 features: fc2 after ReLU) fed the same file. The
    module is called directly: VGG16 at 224x224 is slow on a CPU, and the extractor pads small batches."""
    from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16

    reference = FeatureExtractorVGG16("vgg16", ["fc2", "fc2_relu"],
                                      feature_extractor_weights_path=str(vgg16_fc2_weights))
    ours, fingerprint = FEATURE_NETWORKS["vgg16-fc2"](vgg16_fc2_weights, torch.device("cpu"))
    assert fingerprint.startswith("vgg16-fc2:")
    g = torch.Generator().manual_seed(5)
    for shape in ((1, 3, 32, 40), (1, 3, 256, 200)):  # upsampled and downsampled to 224x224
        images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
        with torch.no_grad():
            fc2, expected = reference(images)
            got = ours(images)
        assert got.shape == (1, 4096) and got.dtype == torch.float32
        assert 0.2 < (expected > 0).float().mean() < 0.8 and (fc2 < 0).any()  # features after the ReLU
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=5e-5)
    with pytest.raises(InputError, match="uint8"):
        ours(images.float())


def test_vgg16_fc2_refuses_other_weights(tmp_path):
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "partial.pth")
    with pytest.raises(InputError, match="missing .* tensors"):
        build_feature_extractor("vgg16-fc2", weights=tmp_path / "partial.pth", device=torch.device("cpu"))
