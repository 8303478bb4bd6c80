"""FD_DINOv2 and the other metrics in DINOv2 features, by name: a tiny DINOv2 in Meta's layout (from the fixture made
with Meta's code) stands in for ViT-L/14 under its registry name; one generation pass and one network call per image
for every metric; EDM2's statistics file of it written in one pass and read back; KID/PR/DC by the _dinov2 suffix."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from stylegan_core import InputError
from stylegan_metrics import evaluate, frechet_distance
from stylegan_metrics.networks import dinov2 as D
from stylegan_metrics.networks.registry import FEATURE_NETWORKS, module_fingerprint
from stylegan_metrics.stats import FEATURE_WIDTHS
from stylegan_metrics_cli.main import main
from helpers import DINOV2_FIXTURE, CrashingQuadrants, tiny_dinov2_state, tiny_generator, write_disc_images

pytestmark = pytest.mark.usefixtures("one_thread")
OPTIONS = dict(batch_size=4, chunk_size=8, device="cpu", progress=False)


class Counted(D.DinoV2Features):
    calls = 0

    def forward(self, images):
        Counted.calls += 1
        return super().forward(images)


@pytest.fixture
def tiny_l14(monkeypatch):
    """The fixture's 64-wide DINOv2 registered as dinov2-vit-l14 and -pil (calls counted in Counted.calls)."""
    with np.load(DINOV2_FIXTURE) as data:
        vit = D.load_dinov2(tiny_dinov2_state({k: data[k] for k in data.files}, "mlp"))

    def build(weights, device, *, resize):
        module = Counted(vit, resize=resize).to(device)
        return module, f"tiny-{resize}:{module_fingerprint(module)}"
    for name, resize in (("dinov2-vit-l14", "torch"), ("dinov2-vit-l14-pil", "pil")):
        monkeypatch.setitem(FEATURE_NETWORKS, name, lambda w, d, r=resize: build(w, d, resize=r))
        monkeypatch.setitem(FEATURE_WIDTHS, name, 64)
    Counted.calls = 0
    return vit


def features(vit, images: torch.Tensor, resize: str = "torch") -> np.ndarray:
    with torch.inference_mode():
        return D.DinoV2Features(vit, resize=resize)(images).double().numpy()


def test_fd_dinov2_is_the_frechet_distance_of_dinov2_features_in_the_shared_pass(tmp_path, metrics_home, tiny_l14):
    data = write_disc_images(tmp_path / "real", 12, size=16)
    G, inception = tiny_generator(16, seed=1), CrashingQuadrants()
    names = ["fid16_full", "fd_dinov2_16", "kid16_full", "kid16_full_dinov2", "pr163_full_dinov2", "dc165_full_dinov2"]
    results = evaluate(G, names, data=data, features=inception, **OPTIONS)
    assert [r.metric for r in results] == names
    assert Counted.calls == 3 + 4  # DINOv2: 12 reference and 16 generated images, 4 per call, once for 4 metrics
    assert inception.calls == 3 + 4  # FID and KID's stand-in likewise
    fd = results[1]
    assert fd.params["features"] == "dinov2-vit-l14" and fd.params["cov"] == "unbiased" and fd.params["max_real"] is None
    from stylegan_metrics.engine.sampling import generate_batches
    from stylegan_core.data.datasets import ImageDataset

    gen = torch.cat([b.images for b in generate_batches(G, 16, batch_size=16, seed=0, device=torch.device("cpu"))])
    real = torch.stack([ImageDataset(data, labels=False)[i][0] for i in range(12)])
    a, b = features(tiny_l14, gen), features(tiny_l14, real)
    expected = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert fd.value == pytest.approx(expected, rel=1e-6)
    assert all(r.params["features"] == "dinov2-vit-l14" for r in results[3:])
    assert results[2].params["features"] == "CrashingQuadrants"


def test_edm2s_file_of_fid_and_fd_dinov2_from_one_pass_feeds_both(tmp_path, metrics_home, tiny_l14, inception_weights):
    data = write_disc_images(tmp_path / "real", 6, size=16)
    out = tmp_path / "ref.pkl"
    r = CliRunner().invoke(main, ["stats", "--data", str(data), "--out", str(out), "--weights",
                                  f"inception-v3={inception_weights}", "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert Counted.calls == 1  # 6 images in one batch, one pass for both networks
    G = tiny_generator(16, seed=1)
    [from_file] = evaluate(G, ["fd_dinov2_8"], data=out, **OPTIONS)
    [from_images] = evaluate(G, ["fd_dinov2_8"], data=data, **OPTIONS)
    assert from_file.value == pytest.approx(from_images.value, rel=1e-9)
    assert from_file.params["reference_n"] == 6
    with pytest.raises(InputError, match="holds statistics of .*not of 'dinov2-vit-l14-pil'"):
        evaluate(G, ["fd_dinov2_8_pil"], data=out, **OPTIONS)


def test_fd_dinov2_names(tiny_l14):
    from stylegan_metrics.metrics import build_metric

    assert build_metric("fd_dinov2_50k").name == "fd_dinov2" and build_metric("fd_dinov2").num == 50_000
    assert build_metric("fd_dinov2_2500_pil").network == "dinov2-vit-l14-pil"
    with pytest.raises(InputError, match="named twice"):
        evaluate(tiny_generator(16), ["fd_dinov2", "fd_dinov2_50k"], data="x", device="cpu")


def test_the_cli_computes_fid_fd_dinov2_kid_and_pr_in_one_generation_pass(tmp_path, metrics_home, tiny_l14,
                                                                          monkeypatch):
    """The four metrics of EDM2's and NVIDIA's suites by name from the command line; stand-ins registered for
    Inception and VGG16 count their calls: every network once per generated image, one generation pass."""
    from stylegan_core import save_checkpoint

    stand_ins = {"inception-v3": CrashingQuadrants(), "vgg16-fc2": CrashingQuadrants()}
    for name, net in stand_ins.items():
        monkeypatch.setitem(FEATURE_NETWORKS, name, lambda w, d, net=net: (net.to(d), f"stand-in-{id(net)}"))
    generated = []
    G = tiny_generator(16, seed=1)
    original = G.synthesis.forward
    monkeypatch.setattr(G.synthesis, "forward", lambda *a, **k: generated.append(list(a[0].shape)) or original(*a, **k))
    ckpt = save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)
    data, out = write_disc_images(tmp_path / "real", 12, size=16), tmp_path / "m.jsonl"
    monkeypatch.setattr("stylegan_core.formats.checkpoint.load_generator", lambda *a, **k: G)
    r = CliRunner().invoke(main, ["evaluate", "--ckpt", str(ckpt), "--data", str(data), "--metrics",
                                  "fid16_full,fd_dinov2_16,kid16_full,pr163_full", "--batch", "4", "--device", "cpu",
                                  "--no-progress", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert [line.split('"metric": "')[1].split('"')[0] for line in out.read_text().splitlines()] == [
        "fid16_full", "fd_dinov2_16", "kid16_full", "pr163_full"]
    assert len(generated) == 4  # 16 images, 4 per generator call (each padded to 16 rows), made once for all four
    assert Counted.calls == 3 + 4 and all(net.calls == 3 + 4 for net in stand_ins.values())


def test_kid_pr_and_dc_run_in_any_registered_feature_space_by_suffix(tmp_path, metrics_home):
    from stylegan_metrics.metrics import build_metric

    data, G = write_disc_images(tmp_path / "real", 12, size=32), tiny_generator(32, seed=2)
    by_name = evaluate(G, ["kid12_full_toyfaces", "pr123_full_toyfaces", "dc123_full_toyfaces"], data=data,
                       **OPTIONS)
    [by_option] = evaluate(G, ["kid12_full"], data=data, features="toyfaces", **OPTIONS)
    assert by_name[0].value == by_option.value
    assert all(r.params["features"] == "toyfaces" for r in by_name)
    assert set(by_name[1].results) == {"pr123_full_toyfaces_precision", "pr123_full_toyfaces_recall"}
    assert build_metric("kid50k_full_inception-v3").name == "kid50k_full"  # its own network: one name
    assert build_metric("pr50k3_full_dinov2-vit-l14").name == "pr50k3_full_dinov2"
    with pytest.raises(InputError, match="'fully' is not a feature network"):
        build_metric("kid50k_fully")
