"""KID, precision/recall and IS on the engine: one Inception call per generated image for FID + KID + IS, values
equal to the pure formulas on features computed image by image, NVIDIA's names and counts."""

import numpy as np
import pytest
import torch

from stylegan_core.data.datasets import ImageDataset
from stylegan_metrics import evaluate
from stylegan_metrics.engine.sampling import generate_batches
from stylegan_metrics.formulas.inception_score import inception_score_from_probs
from stylegan_metrics.formulas.kid import kid_from_arrays
from stylegan_metrics.formulas.precision_recall import precision_recall_from_arrays
from stylegan_metrics.metrics import build_metric
from stylegan_metrics.networks.registry import build_feature_extractor
from helpers import tiny_generator, write_disc_images

CPU = torch.device("cpu")


def features_by_hand(extractor, G, num: int, folder):
    """(generated, real) outputs of the network, every image in one call (per-image results do not depend on it)."""
    [batch] = generate_batches(G, num, batch_size=num, seed=0, device=CPU)
    dataset = ImageDataset(folder, channels=3)
    real = torch.stack([dataset[i][0] for i in range(len(dataset))])
    return [o.numpy() for o in extractor.outputs(batch.images)], [o.numpy() for o in extractor.outputs(real)]


def test_fid_kid_is_share_one_inception_call_per_generated_image(tmp_path, inception_weights, metrics_home,
                                                                monkeypatch):
    G, folder = tiny_generator(16, seed=1), write_disc_images(tmp_path / "real", 12, size=16)
    extractor = build_feature_extractor("inception-v3", weights=inception_weights, device=CPU)
    rows, synthesized = [], []
    original = extractor.outputs
    extractor.outputs = lambda images: rows.append(images.shape[0]) or original(images)
    hook = G.synthesis.register_forward_hook(lambda module, args, out: synthesized.append(out.shape[0]))
    try:
        results = evaluate(G, ["fid20_full", "kid20_full", "is20"], data=folder, features=extractor, batch_size=20,
                           device="cpu", progress=False)
    finally:
        hook.remove()
        extractor.outputs = original
    assert sum(synthesized) == 20
    assert sum(rows) == 20 + 12  # generated once for all three; the 12 reals once for KID's features and FID's sums
    monkeypatch.setenv("STYLEGAN_METRICS_HOME", str(tmp_path / "empty-cache"))
    [alone] = evaluate(G, ["fid20_full"], data=folder, features=extractor, batch_size=20, device="cpu", progress=False)
    assert alone.value == results[0].value  # sums of the kept features: bit-equal to FID's own pass
    gen, real = features_by_hand(extractor, G, 20, folder)
    kid = results[1].value
    assert kid == pytest.approx(kid_from_arrays(real[0], gen[0], num_subsets=100, max_subset_size=1000, seed=0),
                                rel=1e-5)
    logits = gen[1].astype(np.float64)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    mean, std = inception_score_from_probs(probs, num_splits=10)
    assert results[2].results == pytest.approx({"is20_mean": mean, "is20_std": std}, rel=1e-5)
    assert results[1].params["max_real"] == 1_000_000 and results[1].params["reference_n"] == 12


def test_precision_recall_on_vgg16_features(tmp_path, vgg16_weights, metrics_home):
    G, folder = tiny_generator(16, seed=3), write_disc_images(tmp_path / "real", 8, size=16)
    [result] = evaluate(G, ["pr83"], data=folder, weights={"vgg16-fc2": vgg16_weights}, device="cpu",
                        progress=False)  # 8 generated, the first 8 reference images, k = 3
    extractor = build_feature_extractor("vgg16-fc2", weights=vgg16_weights, device=CPU)
    gen, real = features_by_hand(extractor, G, 8, folder)
    precision, recall = precision_recall_from_arrays(real[0], gen[0], k=3)
    assert result.results == {"pr83_precision": precision, "pr83_recall": recall}
    assert result.params["features"] == "vgg16-fc2"


def test_names_follow_nvidias_counts():
    kid, kid_legacy = build_metric("kid50k_full"), build_metric("kid50k")
    assert (kid.num, kid.max_real, kid.num_subsets, kid.max_subset_size) == (50_000, 1_000_000, 100, 1000)
    assert kid_legacy.max_real == 50_000
    pr, pr_legacy = build_metric("pr50k3_full"), build_metric("pr50k3")
    assert (pr.num, pr.max_real, pr.k, pr_legacy.max_real) == (50_000, 200_000, 3, 50_000)
    inception_score = build_metric("is50k")
    assert (inception_score.num, inception_score.num_splits, inception_score.output) == (50_000, 10, 1)


def test_feature_metrics_need_images_not_statistics(tmp_path, inception_weights):
    from stylegan_core import InputError

    with pytest.raises(InputError, match="reference must be an image folder, a zip"):
        evaluate(tiny_generator(16), ["kid20_full"], data=tmp_path / "ref.npz", weights=inception_weights,
                 device="cpu", progress=False)
