"""Linear separability: conditional entropy by hand, oracle attributes, an independent reference, classifiers."""

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from stylegan_core import InputError, save_checkpoint
from stylegan_metrics import AttributeClassifier, linear_separability, load_classifier, separability_from_arrays
from stylegan_metrics.networks.attributes import CELEBA_ATTRIBUTES, select_attributes
from stylegan_metrics.networks.classifier import train_classifier
from stylegan_metrics.formulas.separability import conditional_entropy
from stylegan_metrics_cli.main import main
from helpers import tiny_generator


def test_conditional_entropy_hand_cases():
    assert conditional_entropy([[0.25, 0.25], [0.25, 0.25]]) == pytest.approx(1.0)   # independent, balanced
    assert conditional_entropy([[0.5, 0.0], [0.0, 0.5]]) == 0.0                      # identical
    assert conditional_entropy([[0.0, 0.5], [0.5, 0.0]]) == 0.0                      # identical up to naming
    assert conditional_entropy([[0.3, 0.0], [0.7, 0.0]]) == 0.0                      # one class absent
    p = [[0.4, 0.1], [0.2, 0.3]]
    expected = 0.4 * math.log2(0.5 / 0.4) + 0.1 * math.log2(0.5 / 0.1) + 0.2 * math.log2(0.5 / 0.2) + 0.3 * math.log2(0.5 / 0.3)
    assert conditional_entropy(p) == pytest.approx(expected, rel=1e-12)


def nvidia_style_reference(latents, logits, keep):
    """A straightforward transcription of the StyleGAN1 procedure, independent of our implementation."""
    from sklearn.svm import LinearSVC

    n = len(latents)
    num_keep = int(round(n * keep))
    total = 0.0
    for k in range(logits.shape[1]):
        probs = [(1 / (1 + math.exp(-2 * l)), 1 / (1 + math.exp(2 * l))) for l in logits[:, k]]
        order = sorted(range(n), key=lambda i: -max(probs[i]))[:num_keep]
        targets = np.array([int(np.argmax(probs[i])) for i in order])  # 0 = positive, as NVIDIA's softmax order
        try:
            svm = LinearSVC(random_state=0).fit(latents[order], targets)
            outputs = svm.predict(latents[order])
        except ValueError:
            outputs = targets
        p = [[np.mean([(o, t) == (row, col) for o, t in zip(outputs, targets)]) for col in (0, 1)] for row in (0, 1)]
        h = 0.0
        for x in range(2):
            for y in range(2):
                if p[x][y] > 0:
                    h += p[x][y] * math.log2(sum(p[x]) / p[x][y])
        total += h
    return 2 ** total


def oracle_data(n=1200, d=8, seed=0):
    rng = np.random.RandomState(seed)
    z = rng.randn(n, d).astype(np.float32)
    linear = np.stack([z @ rng.randn(d) for _ in range(3)], axis=1)           # separable
    xor = np.stack([z[:, 0] * z[:, 1], z[:, 2] * z[:, 3]], axis=1)            # not linearly separable
    return z, linear.astype(np.float64) * 3, xor.astype(np.float64) * 3


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_equals_independent_reference_exactly():
    z, linear, xor = oracle_data(400)
    logits = np.concatenate([linear[:, :1], xor[:, :1], np.zeros((400, 1)) + 0.5], axis=1)  # last: one class only
    score, table = separability_from_arrays(z, logits, keep=0.5)
    assert score == nvidia_style_reference(z, logits, 0.5)
    assert list(table.columns) == ["attribute", "entropy_bits", "svm_accuracy", "positive_rate", "kept"]
    assert table.kept.tolist() == [200, 200, 200] and table.entropy_bits[2] == 0.0


def test_oracle_generators_order():
    z, linear, xor = oracle_data()
    s_linear, t_linear = separability_from_arrays(z, linear)
    s_xor, _ = separability_from_arrays(z, xor)
    s_mix, _ = separability_from_arrays(z, np.concatenate([linear[:, :1], xor[:, :1]], axis=1))
    assert s_linear < 1.05 and (t_linear.svm_accuracy > 0.99).all()
    assert s_xor > 2.5
    assert s_linear < s_mix < s_xor
    again, _ = separability_from_arrays(z, xor)
    assert again == s_xor  # deterministic


def test_selecting_attributes():
    assert select_attributes(3) == ["Male", "Smiling", "Attractive"]
    assert select_attributes("Bald,Bangs") == ["Bald", "Bangs"]
    assert len(select_attributes("40")) == 40 and select_attributes(40) == CELEBA_ATTRIBUTES
    with pytest.raises(InputError, match="unknown attribute 'Unicorn'"):
        select_attributes("Male,Unicorn")
    with pytest.raises(InputError, match="between 1 and 40"):
        select_attributes(41)


def write_labelled_discs(folder, n=240, size=16, seed=0):
    """Two attributes: 'Red' (red vs blue disc) and 'Left' (disc centre on the left half)."""
    rng = np.random.RandomState(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        red, left = rng.rand() < 0.5, rng.rand() < 0.5
        img = np.full((size, size, 3), 128, np.uint8)
        cx = rng.randint(2, size // 2 - 2) if left else rng.randint(size // 2 + 2, size - 2)
        cy = rng.randint(3, size - 3)
        yy, xx = np.mgrid[:size, :size]
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= 6] = (230, 30, 30) if red else (30, 30, 230)
        Image.fromarray(img).save(folder / f"{i:05d}.png")
        rows.append(f"{i:05d}.png {1 if red else -1} {1 if left else -1}")
    labels = folder.parent / "list_attr.txt"
    labels.write_text(f"{n}\nRed Left\n" + "\n".join(rows) + "\n")
    return folder, labels


def test_classifier_training_reaches_high_held_out_accuracy(tmp_path):
    folder, labels = write_labelled_discs(tmp_path / "imgs")
    model, table = train_classifier(folder, labels, tmp_path / "C.pt", attributes="Red,Left", resolution=16,
                                    epochs=30, batch_size=32, lr=3e-3, val_fraction=0.2, progress=False)
    assert table.attribute.tolist() == ["Red", "Left"]
    assert (table.accuracy >= 0.9).all(), table
    loaded = load_classifier(tmp_path / "C.pt")
    assert loaded.attributes == ["Red", "Left"] and loaded.accuracy == pytest.approx(model.accuracy)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    assert torch.equal(loaded(x), model(x))


class PixelOracle(torch.nn.Module):
    """A 'classifier' reading attributes straight off the image: mean of each colour channel."""

    attributes = ["Male", "Smiling", "Young"]

    def forward(self, images):
        return images.mean(dim=(2, 3)) * 10


def test_linear_separability_end_to_end_and_cli(tmp_path):
    G = tiny_generator(16, seed=1)
    res = linear_separability(G, PixelOracle(), num_samples=300, attributes=3, batch_size=64, device="cpu",
                              progress=False)
    assert set(res.results) == {"ls300_z", "ls300_w"} and all(v >= 1 for v in res.results.values())
    assert res.details.shape[0] == 6 and set(res.details.space) == {"z", "w"}
    again = linear_separability(G, PixelOracle(), num_samples=300, attributes=3, batch_size=7, device="cpu",
                                progress=False)
    assert again.results == res.results  # batch size does not matter

    ckpt = save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)
    clf = AttributeClassifier(["Male", "Smiling"], input_resolution=16)
    clf_path = save_checkpoint(tmp_path / "C.pt", kind="attribute-classifier", config={"classifier": clf.config},
                               classifier=clf.state_dict())
    runner = CliRunner()
    args = ["ls", "--ckpt", str(ckpt), "--classifier", str(clf_path), "--num", "64", "--device", "cpu", "--no-progress"]
    res = runner.invoke(main, args + ["--attributes", "2", "--details", str(tmp_path / "d.csv")])
    assert res.exit_code == 0, res.output
    assert "ls64_z" in res.output and "Smiling" in res.output
    import pandas as pd
    assert pd.read_csv(tmp_path / "d.csv").shape[0] == 4
    res = runner.invoke(main, args + ["--attributes", "Male,Bald"])
    assert res.exit_code == 2 and "unknown attribute 'Bald'" in res.stderr
    res = runner.invoke(main, args[:4] + [str(ckpt)] + args[5:])  # a generator is not a classifier
    assert res.exit_code == 2 and "not an attribute classifier" in res.stderr


@pytest.mark.parametrize("data", ["oracle", "random"])
def test_torch_back_end_agrees_with_sklearn(data):
    z, linear, xor = oracle_data(1500, d=12, seed=3)
    if data == "oracle":
        logits = np.concatenate([linear, xor], axis=1)
    else:
        logits = np.random.RandomState(4).randn(1500, 6)
    s_ref, t_ref = separability_from_arrays(z, logits, svm="sklearn")
    s_torch, t_torch = separability_from_arrays(z, logits, svm="torch")
    assert abs(s_torch - s_ref) <= 0.02 * s_ref
    # accuracy against the same labels on the same kept points: identical predictions give identical accuracy
    assert np.abs(t_torch.svm_accuracy - t_ref.svm_accuracy).max() <= 0.005
