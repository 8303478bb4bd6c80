"""End to end against torch-fidelity: our IS and KID of a folder of generated images against a reference folder equal
`torch_fidelity.calculate_metrics` on the same PNGs and the same Inception weights file, with its options set to
compute the same thing (IS: 10 consecutive splits, no shuffling; KID: every subset the whole set)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_metrics import evaluate
from stylegan_metrics.engine.sampling import generate_batches
from stylegan_metrics.networks.registry import build_feature_extractor
from helpers import tiny_generator, write_disc_images

NUM = 20     # images on each side (Inception at 299 px costs ~0.1 s per image here; each tool reads 2 x NUM)
SIZE = 32    # pixels, both folders
CPU = torch.device("cpu")


def write_generated(folder: Path, num: int) -> Path:
    """Samples 0..num-1 of a tiny generator as PNGs named in index order (both tools read them sorted by name)."""
    folder.mkdir(parents=True)
    for batch in generate_batches(tiny_generator(SIZE, seed=2), num, batch_size=num, seed=0, device=CPU):
        for i, image in enumerate(batch.images):
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{batch.start + i:04d}.png")
    return folder


def sharpened_weights(weights: Path, image_folder: Path, out: Path) -> Path:
    """The seeded random weights with the output layer's rows made orthogonal to the pool feature of one image and
    scaled by 100 (the same upstream format). As written, every image's pool feature is nearly the same vector,
    the logits are dominated by a shared per-class offset, and IS is 1 + 1e-4; without that offset the class
    probabilities differ between images and IS is well above 1 (a comparison that can fail)."""
    state = torch.load(weights, weights_only=True)
    extractor = build_feature_extractor("inception-v3", weights=weights, device=CPU)
    first = np.array(Image.open(sorted(image_folder.iterdir())[0]).convert("RGB"))  # [H, W, 3] uint8
    f = extractor(torch.from_numpy(first).permute(2, 0, 1)[None])[0]                  # [2048]
    w = state["fc.weight"]                                            # [1008, 2048]
    state["fc.weight"] = 100 * (w - torch.outer(w @ f, f) / (f @ f))
    torch.save(state, out)
    return out


@pytest.fixture(scope="module")
def folders(tmp_path_factory, inception_weights):
    root = tmp_path_factory.mktemp("peer")
    gen = write_generated(root / "gen", NUM)
    real = write_disc_images(root / "real", NUM, size=SIZE)
    return gen, real, sharpened_weights(inception_weights, gen, root / "inception-sharpened.pth")


def test_is_and_kid_equal_torch_fidelity_on_folders(folders, metrics_home):
    import torch_fidelity

    gen, real, weights = folders
    kid, isc = evaluate(None, ["kid", "is"], gen=gen, data=real, weights=weights, device="cpu", progress=False)
    assert (kid.metric, isc.metric) == (f"kid{NUM}_full", f"is{NUM}")
    assert kid.params["num_subsets"] == 100 and min(NUM, kid.params["max_subset_size"]) == NUM  # subsets: whole sets

    theirs = torch_fidelity.calculate_metrics(
        input1=str(gen), input2=str(real), isc=True, kid=True, cuda=False, cache=False, verbose=False,
        save_cpu_ram=True,                        # decode in this process (no DataLoader workers on 2 cores)
        feature_extractor="inception-v3-compat", feature_extractor_weights_path=str(weights),
        isc_splits=10, samples_shuffle=False,     # its splits [i N // 10, (i + 1) N // 10) of the unshuffled files
        kid_subsets=10, kid_subset_size=NUM)      # a subset of size N is the whole set, however it is drawn

    # Pool features and logits of the two networks agree to ~1e-6 relative (float32 rounding; ours folds each
    # BatchNorm into its convolution). IS is computed in float64 from the logits on both sides: 1e-5.
    assert isc.results[f"is{NUM}_mean"] > 1.3 and isc.results[f"is{NUM}_std"] > 0.05  # far from the trivial 1, 0
    assert isc.results[f"is{NUM}_mean"] == pytest.approx(theirs["inception_score_mean"], rel=1e-5)
    assert isc.results[f"is{NUM}_std"] == pytest.approx(theirs["inception_score_std"], rel=1e-5)

    # torch-fidelity sums the kernel in float32 (ours in float64): its 10 subsets, each the whole set in another
    # order, scatter by a few 1e-5 of the value. A subset smaller than the set would scatter by ~10%.
    value = theirs["kernel_inception_distance_mean"]
    assert value > 1e-3 and theirs["kernel_inception_distance_std"] < 1e-4 * value
    assert kid.value == pytest.approx(value, rel=1e-4)
