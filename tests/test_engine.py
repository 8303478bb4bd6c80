"""The metric engine: names parsed as NVIDIA's, one generation pass shared by FID and LS with the single-metric
results, and a metric added in a few lines running through `evaluate` and the CLI."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from stylegan_core import InputError, save_checkpoint
from stylegan_metrics import evaluate, fid, linear_separability
from stylegan_metrics.engine.metric import count_name, parse_count
from stylegan_metrics.engine.sampling import generate_batches
from stylegan_metrics.metrics import FAMILIES, METRICS, build_metric, register
from stylegan_metrics_cli.main import main
from helpers import Colours, Quadrants, architecture_example, quadrant_reference, tiny_generator


@pytest.mark.parametrize("name,expected", [
    ("fid50k_full", dict(name="fid50k_full", num=50_000, max_real=None, cov="biased")),
    ("fid50k", dict(name="fid50k", num=50_000, max_real=50_000, cov="biased")),
    ("fid200_full", dict(name="fid200_full", num=200, max_real=None, cov="biased")),
    ("ppl_zfull", dict(name="ppl_zfull", num=50_000, crop=True, downsample="ada", combos=[("z", "full")])),
    ("ppl_wend", dict(name="ppl_wend", num=50_000, crop=True, combos=[("w", "end")], epsilon=1e-4)),
    ("ppl2_wend", dict(name="ppl2_wend", num=50_000, crop=False, combos=[("w", "end")])),
    ("ppl2500_zend", dict(name="ppl2500_zend", num=2500, crop=True, combos=[("z", "end")])),
    ("ls", dict(name="ls", num=200_000, keep=0.5)),
    ("ls10k", dict(name="ls10k", num=10_000)),
])
def test_names_mean_what_nvidia_means(name, expected):
    metric = build_metric(name)
    assert {k: getattr(metric, k) for k in expected} == expected


def test_name_rules():
    assert build_metric("fid10k_full", cov="unbiased").name == "fid10k_full_unbiased"  # never passes for NVIDIA's
    assert build_metric("fid10k_full", truncation_psi=0.7).truncation_psi == 0.7
    assert (parse_count("50k"), parse_count("200"), count_name(2500), count_name(10_000)) == (50_000, 200, "2500", "10k")
    assert set(METRICS) >= {"fid50k_full", "fid50k", "ppl_zfull", "ppl_wfull", "ppl_zend", "ppl_wend", "ppl2_wend", "ls"}
    with pytest.raises(InputError, match="unknown metric 'fid50k_half'"):
        build_metric("fid50k_half")
    with pytest.raises(InputError, match="at least 2 samples"):
        build_metric("fid1_full")
    with pytest.raises(InputError, match="named twice"):
        evaluate(tiny_generator(16), ["ls", "ls"])


def test_fid_and_ls_share_one_generation_pass():
    """fid200_full + ls200 generate 200 images, not 400, and equal the two metrics run alone."""
    G, C, ref = tiny_generator(16, seed=1), Colours(), quadrant_reference()
    features = Quadrants()
    seen = []
    hook = G.synthesis.register_forward_hook(lambda module, args, out: seen.append(out.shape[0]))
    try:
        both = evaluate(G, ["fid200_full", "ls200"], data=ref, features=features, classifier=C, attributes=3,
                        batch_size=50, seed=4, device="cpu", progress=False)
    finally:
        hook.remove()
    assert sum(seen) == 200
    alone_fid = fid(G, ref, num_gen=200, cov="biased", features=features, batch_size=32, seed=4, device="cpu",
                    progress=False)
    alone_ls = linear_separability(G, C, num_samples=200, attributes=3, batch_size=16, seed=4, device="cpu",
                                   progress=False)
    assert [r.metric for r in both] == ["fid200_full", "ls200"]
    assert both[0].results == {"fid200_full": alone_fid.value}  # bit for bit
    assert both[1].results == alone_ls.results and set(alone_ls.results) == {"ls200_z", "ls200_w"}
    assert both[0].params["max_real"] is None and both[0].params["cov"] == "biased"


@pytest.fixture
def brightness_registered():
    """docs/architecture.md's mean-brightness metric, registered for one test."""
    families, metrics = list(FAMILIES), dict(METRICS)
    register(architecture_example().BRIGHTNESS)
    yield
    FAMILIES[:], METRICS.clear()
    FAMILIES.extend(families)
    METRICS.update(metrics)


def test_a_registered_metric_runs_through_evaluate_and_the_cli(tmp_path, brightness_registered):
    G = tiny_generator(16, seed=2)
    expected = np.mean([b.images.double().mean().item()
                        for b in generate_batches(G, 24, batch_size=1, seed=0, device=torch.device("cpu"))])
    [result] = evaluate(G, ["brightness24"], batch_size=5, device="cpu", progress=False)
    assert result.value == pytest.approx(expected, rel=1e-12)

    ckpt = save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)
    out = tmp_path / "m.jsonl"
    r = CliRunner().invoke(main, ["evaluate", "--ckpt", str(ckpt), "--metrics", "brightness24", "--device", "cpu",
                                  "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    line = json.loads(out.read_text())
    assert line["metric"] == "brightness24" and line["results"]["brightness24"] == pytest.approx(expected, rel=1e-12)
    assert line["snapshot_pkl"] == str(ckpt)
    assert not list(tmp_path.glob("m.evaluate-*-state"))  # the state went once the line was written

    r = CliRunner().invoke(main, ["evaluate", "--ckpt", str(ckpt), "--metrics", "brightness24,nope"])
    assert r.exit_code == 2 and "unknown metric 'nope'" in r.output


def test_cli_feature_batch_changes_calls_not_numbers(tmp_path, metrics_home):
    from stylegan_core.data.toyfaces import write_toyfaces

    G = tiny_generator(32, seed=4)
    ckpt = save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)
    data = write_toyfaces(tmp_path / "real.zip", 20, resolution=32, progress=False)
    lines = {}
    for extra in ([], ["--feature-batch", "12"]):
        out = tmp_path / f"m{len(extra)}.jsonl"
        r = CliRunner().invoke(main, ["evaluate", "--ckpt", str(ckpt), "--metrics", "fid24_full,kid24_full,is24",
                                      "--data", str(data), "--features", "toyfaces", "--batch", "4", "--device", "cpu",
                                      "--no-progress", "--out", str(out), *extra])
        assert r.exit_code == 0, r.output
        lines[len(extra)] = [json.loads(line)["results"] for line in out.read_text().splitlines()]
    assert lines[0] == lines[2] and len(lines[0]) == 3  # bit for bit
    r = CliRunner().invoke(main, ["evaluate", "--ckpt", str(ckpt), "--metrics", "fid24_full", "--feature-batch", "0"])
    assert r.exit_code == 2 and "--feature-batch" in r.output


def test_weights_for_a_network_no_metric_runs_are_refused(tmp_path):
    with pytest.raises(InputError, match="weights given for lpips-vgg16, which no metric of this evaluation runs"):
        evaluate(tiny_generator(16), ["fid8_full"], data=quadrant_reference(), features=Quadrants(),
                 weights={"lpips-vgg16": tmp_path / "lpips.pth"}, device="cpu", progress=False)
