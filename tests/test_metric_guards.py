"""Metric names shared by every front end, conditional generators in PPL and LS, and the checks made before any
long work: epsilon, counts, precision/recall's k, duplicate names, the generated side's options; weak-score
warnings and status lines off a terminal."""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from stylegan_core import InputError, save_checkpoint
from stylegan_core.formats.checkpoint import load_generator
from stylegan_metrics import AttributeClassifier, evaluate, fid, linear_separability, ppl
from stylegan_metrics.engine import passes
from stylegan_metrics.engine.metric import MAX_COUNT, MetricWarning
from stylegan_metrics.engine.passes import index_batches, run_pass
from stylegan_metrics.metrics import build_metric
from stylegan_metrics.metrics.fid import fid_name
from stylegan_metrics.metrics.ls import MIN_KEPT, constant_attributes_warning, few_kept_warning, ls_name
from stylegan_metrics.formulas.paths import downsample_rules_agree
from stylegan_metrics.metrics.ppl import MIN_EPSILON, path_length_metric, ppl_name
from helpers import (Colours, Crash, CrashingColours, Quadrants, invoke, mean_squared_l2, one_line_error,
                     quadrant_reference, tiny_generator, write_disc_images, write_zip_dataset)

CONDITIONAL = Path(__file__).parent / "fixtures" / "nvidia_ada_conditional.pkl"
quiet_ls = pytest.mark.filterwarnings("ignore::stylegan_metrics.engine.metric.MetricWarning")


class Constant(torch.nn.Module):
    """A classifier that says 'yes' to its first attribute on every image and follows the image on the second."""

    attributes = ["Always", "Red"]

    def forward(self, x):
        return torch.stack([torch.ones(x.shape[0]), x[:, 0].mean(dim=(1, 2)) * 8], dim=1)


# ---- one name per computation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,options", [
    (ppl_name("w", "end"), dict(num=50_000, crop=True, downsample="ada", epsilon=1e-4)),
    (ppl_name("w", "end", crop=False), dict(num=50_000, crop=False)),
    (ppl_name("w", "end", num=500), dict(num=500, crop=True, downsample="ada")),
    (ppl_name("w", "end", num=100_000, downsample="stylegan1"), dict(num=100_000, downsample="stylegan1")),
    (ppl_name("z", "full", num=2500, epsilon=1e-3, crop=False, downsample="stylegan1"),
     dict(num=2500, epsilon=1e-3, crop=False, downsample="ada")),  # uncropped: the two rules are one computation
    (ls_name(), dict(num=200_000, keep=0.5)),
    (ls_name(500), dict(num=500, keep=0.5)),
    (ls_name(64, 0.04), dict(num=64, keep=0.04)),
    (fid_name(500, True, "unbiased"), dict(num=500, max_real=None, cov="unbiased")),
    (fid_name(50_000, True, "biased"), dict(num=50_000, max_real=None, cov="biased")),
])
def test_each_name_parses_back_to_its_options(name, options):
    metric = build_metric(name)
    assert metric.name == name and {k: getattr(metric, k) for k in options} == options


def test_names_follow_nvidia_only_for_nvidias_definitions():
    assert ppl_name("w", "end") == "ppl_wend" and ppl_name("w", "end", crop=False) == "ppl2_wend"
    assert ppl_name("w", "end", num=500) == "ppl500_wend"
    assert ppl_name("w", "end", num=100_000, downsample="stylegan1") == "ppl100k_wend_sg1down"
    assert ppl_name("z", "end", epsilon=1e-3) == "ppl_zend_eps0.001"
    assert ls_name(500) == "ls500" and ls_name(10_000, 0.25) == "ls10k_keep0.25" and ls_name() == "ls"
    assert fid_name(500, True, "unbiased") == "fid500_full_unbiased"
    # two spellings of one computation build one name
    assert build_metric("ppl50k_wend").name == "ppl_wend" and build_metric("ppl50k_wend_nocrop").name == "ppl2_wend"
    assert build_metric("ls200k").name == "ls" and build_metric("fid10k_full", cov="unbiased").name == \
        build_metric("fid10k_full_unbiased").name == "fid10k_full_unbiased"
    with pytest.raises(InputError, match="NVIDIA's uncropped"):
        ppl_name("w", "end", num=2, downsample="ada")  # would be read back as ppl2_wend
    with pytest.raises(InputError, match="cov='biased'"):
        build_metric("fid10k_full_unbiased", cov="biased")


def test_python_front_ends_name_results_as_evaluate_does():
    G = tiny_generator(16)
    kw = dict(device="cpu", progress=False)
    for options in (dict(), dict(downsample="ada"), dict(crop=False, space="z", sampling="full", epsilon=1e-3)):
        res = ppl(G, num_samples=6, similarity=mean_squared_l2, **options, **kw)
        [key] = res.results
        [same] = evaluate(G, [key], similarity=mean_squared_l2, batch_size=16, **kw)
        assert same.results == res.results and same.metric == res.metric == key
    assert ppl(G, num_samples=6, similarity=mean_squared_l2, **kw).metric == "ppl6_wend"
    both = path_length_metric(space="both", sampling="both", num_samples=100_000)
    assert both.keys == [f"ppl100k_{c}_sg1down" for c in ("zfull", "zend", "wfull", "wend")]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        res = linear_separability(G, Colours(), num_samples=40, keep=0.25, attributes=3, **kw)
        [same] = evaluate(G, ["ls40_keep0.25"], classifier=Colours(), attributes=3, **kw)
    assert set(res.results) == {"ls40_keep0.25_z", "ls40_keep0.25_w"} and same.results == res.results

    res = fid(G, quadrant_reference(), num_gen=20, features=Quadrants(), **kw)
    [same] = evaluate(G, ["fid20_full_unbiased"], data=quadrant_reference(), features=Quadrants(), **kw)
    assert set(res.results) == {"fid20_full_unbiased"} and same.results == res.results


@quiet_ls
def test_cli_front_ends_name_results_as_evaluate_does(tmp_path):
    G = tiny_generator(16)
    ckpt = save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)
    clf = AttributeClassifier(["Male", "Smiling"], input_resolution=16)
    clf_path = save_checkpoint(tmp_path / "C.pt", kind="attribute-classifier", config={"classifier": clf.config},
                               classifier=clf.state_dict())
    common = ["--ckpt", ckpt, "--device", "cpu", "--no-progress"]
    lines = {}
    for what, args in {"ppl": ["ppl", "--num", 4, "--no-crop", "--similarity", "toyfaces-lpips"],
                       "ppl-eval": ["evaluate", "--metrics", "ppl4_wend_nocrop", "--similarity", "toyfaces-lpips"],
                       "ls": ["ls", "--num", 40, "--classifier", clf_path, "--attributes", 2],
                       "ls-eval": ["evaluate", "--metrics", "ls40", "--classifier", clf_path, "--attributes", 2]}.items():
        out = tmp_path / f"{what}.jsonl"
        r = invoke(*args, *common, "--out", out)
        assert r.exit_code == 0, r.output
        lines[what] = json.loads(out.read_text())
    assert lines["ppl"]["results"] == lines["ppl-eval"]["results"] and set(lines["ppl"]["results"]) == {"ppl4_wend_nocrop"}
    assert lines["ls"]["results"] == lines["ls-eval"]["results"] and set(lines["ls"]["results"]) == {"ls40_z", "ls40_w"}


# ---- conditional generators ----------------------------------------------------------------------------------------

def test_ppl_and_ls_on_a_conditional_generator(tmp_path):
    G = load_generator(CONDITIONAL)
    kw = dict(num_samples=6, similarity=mean_squared_l2, device="cpu", progress=False)
    with pytest.raises(InputError, match="--class N"):
        ppl(G, **kw)
    data = write_zip_dataset(tmp_path / "data.zip", [np.full((16, 16, 3), 40 * i, np.uint8) for i in range(6)],
                             labels=[0, 1, 2, 3, 1, 2])
    a, b = ppl(G, data=data, batch_size=3, **kw), ppl(G, data=data, batch_size=6, **kw)
    assert a.results == b.results and math.isfinite(a.value)  # labels by pair index
    one, two = ppl(G, class_index=1, **kw), ppl(G, class_index=2, **kw)
    assert one.value != two.value and one.params["class"] == 1 and len(a.params["labels"]) == 16
    [same] = evaluate(G, [a.metric], data=data, similarity=mean_squared_l2, device="cpu", progress=False)
    assert same.results == a.results
    with pytest.warns(MetricWarning):
        res = linear_separability(G, Colours(), num_samples=20, attributes=3, class_index=3, device="cpu",
                                  progress=False)
    assert set(res.results) == {"ls20_z", "ls20_w"}


@quiet_ls
def test_cli_ppl_and_ls_take_class_and_data(tmp_path):
    clf = AttributeClassifier(["Male", "Smiling"], input_resolution=16)
    clf_path = save_checkpoint(tmp_path / "C.pt", kind="attribute-classifier", config={"classifier": clf.config},
                               classifier=clf.state_dict())
    common = ["--ckpt", CONDITIONAL, "--device", "cpu", "--no-progress"]
    ppl_args = ["ppl", "--num", 4, "--no-crop", "--similarity", "toyfaces-lpips", *common]
    one_line_error(invoke(*ppl_args), "conditional", "--data", "--class N")
    r = invoke(*ppl_args, "--class", 1)
    assert r.exit_code == 0 and "ppl4_wend_nocrop = " in r.output, r.output
    r = invoke("evaluate", "--metrics", "ppl4_wend_nocrop", "--class", 1, "--similarity", "toyfaces-lpips", *common)
    assert r.exit_code == 0 and "ppl4_wend_nocrop = " in r.output, r.output
    data = write_zip_dataset(tmp_path / "data.zip", [np.zeros((16, 16, 3), np.uint8)] * 4, labels=[0, 1, 2, 3])
    r = invoke("ls", "--num", 20, "--classifier", clf_path, "--attributes", 2, "--data", data, *common)
    assert r.exit_code == 0 and "ls20_z = " in r.output, r.output


# ---- checks before the work ------------------------------------------------------------------------------------------

def test_epsilon_below_float32_resolution_is_refused():
    t = torch.rand(100_000, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.5  # float32 spacing 2^-24 here
    step = (t + MIN_EPSILON) - t
    assert ((step - MIN_EPSILON).abs() <= 0.01 * MIN_EPSILON).all()  # the bound keeps the step within 1%
    assert ((t + 1e-8) - t == 0).any()  # a step far below it vanishes
    G = tiny_generator(16)
    for eps in (1e-30, 1e-7, MIN_EPSILON / 2):
        with pytest.raises(InputError, match="below float32 resolution"):
            ppl(G, num_samples=4, epsilon=eps, similarity=mean_squared_l2, device="cpu", progress=False)
    assert ppl(G, num_samples=4, epsilon=1e-4, similarity=mean_squared_l2, device="cpu", progress=False).value > 0
    with pytest.raises(InputError, match="below float32 resolution"):
        build_metric("ppl_wend_eps1e-30")
    one_line_error(invoke("ppl", "--ckpt", "missing.pt", "--epsilon", "1e-30"), "below float32 resolution", "6e-06")


def test_absurd_counts_are_refused_up_front(tmp_path):
    with pytest.raises(InputError, match="at most 10,000,000 samples"):
        build_metric("fid99999999999999_full")
    with pytest.raises(InputError, match="at most 10,000,000"):
        fid(tiny_generator(16), quadrant_reference(), num_gen=MAX_COUNT + 1, features=Quadrants(), device="cpu")
    assert build_metric(f"fid{MAX_COUNT}_full").num == MAX_COUNT
    ckpt = save_checkpoint(tmp_path / "G.pt", G=tiny_generator(16), G_ema=tiny_generator(16))
    one_line_error(invoke("evaluate", "--ckpt", ckpt, "--data", tmp_path, "--metrics", "fid99999999999999_full"),
             "at most 10,000,000")


class Indices:
    """A consumer of a pass that keeps each sample's index (after `delay` seconds per batch)."""

    def __init__(self, num: int, folder: str, delay: float = 0.0):
        self.num, self.folder, self.delay = num, folder, delay

    def state_key(self):
        return {}

    def shapes(self, count):
        return {}

    def new_part(self):
        return passes.RowsPart(lambda view: time.sleep(self.delay) or {"i": np.arange(view.start,
                                                                                       view.start + view.count)})


def test_status_lines_off_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(passes, "STATUS_SECONDS", 0.0)
    out = run_pass(index_batches(4), [Indices(8, "count")], chunk_size=8, progress=True, desc="count")
    assert np.array_equal(out[0][0]["i"], np.arange(8))
    err = capsys.readouterr().err  # pytest's stderr is no terminal: no bar, status lines instead
    assert "count: 4 of 8 samples (50.0%)" in err and "count: 8 of 8 samples (100.0%)" in err and "left" in err
    run_pass(index_batches(4), [Indices(8, "count")], chunk_size=8, progress=False, desc="count")
    assert capsys.readouterr().err == ""


def test_a_long_pass_says_so_once_from_its_first_samples(monkeypatch, capsys):
    slow = Indices(40, "slow", delay=0.02)
    monkeypatch.setattr(passes, "ESTIMATE_SECONDS", 0.01)
    monkeypatch.setattr(passes, "LONG_PASS_SECONDS", 0.05)  # 10 batches of 20 ms: about 0.2 s in all
    run_pass(index_batches(4), [slow], chunk_size=8, progress=True, desc="slow")
    lines = [line for line in capsys.readouterr().err.splitlines() if "at this speed" in line]
    assert len(lines) == 1 and lines[0].startswith("slow: 4 of 40 samples took 0:00:00; at this speed the rest takes")
    monkeypatch.setattr(passes, "LONG_PASS_SECONDS", 3600.0)
    run_pass(index_batches(4), [slow], chunk_size=8, progress=True, desc="slow")
    assert "at this speed" not in capsys.readouterr().err


def test_precision_recall_k_and_counts_are_checked_before_any_network(tmp_path):
    with pytest.raises(InputError, match="k .* must be at least 1"):
        build_metric("pr80_full")
    with pytest.raises(InputError, match="at least 4 images"):
        build_metric("pr23_full")
    few = write_disc_images(tmp_path / "few", 3)
    # no weights file is given: reaching the VGG16 network would fail differently (no download here)
    with pytest.raises(InputError, match="reference holds 3 images.*at least 4"):
        evaluate(tiny_generator(16), ["pr103_full"], data=few, device="cpu", progress=False)
    gen = write_disc_images(tmp_path / "gen", 5)
    with pytest.raises(InputError, match="holds 5 images, fewer than the 10 that kid10_full reads"):
        evaluate(None, ["kid10_full"], gen=gen, data=few, device="cpu", progress=False)


def test_cli_evaluate_parses_names_as_the_python_api(tmp_path):
    ckpt = save_checkpoint(tmp_path / "G.pt", G=tiny_generator(16), G_ema=tiny_generator(16))
    with pytest.raises(InputError, match="named twice"):
        evaluate(tiny_generator(16), "ppl4_wend,ppl4_wend", device="cpu")
    one_line_error(invoke("evaluate", "--ckpt", ckpt, "--metrics", "ppl4_wend,ppl4_wend"), "named twice")
    one_line_error(invoke("evaluate", "--ckpt", ckpt, "--metrics", "ppl_wend,ppl50k_wend"),
             "'ppl_wend' and 'ppl50k_wend' both name ppl_wend")
    one_line_error(invoke("evaluate", "--data", tmp_path, "--metrics", "fid"), "--ckpt", "--gen", "neither")
    one_line_error(invoke("evaluate", "--ckpt", ckpt, "--gen", tmp_path, "--data", tmp_path, "--metrics", "fid"), "not both")
    one_line_error(invoke("evaluate", "--ckpt", ckpt, "--data", tmp_path, "--metrics", "fid"), "'fid' without a count",
             "fid50k_full")
    with pytest.raises(InputError, match="either a generator or generated images"):
        evaluate(None, ["fid"], data=tmp_path)


# ---- weak linear separability scores ---------------------------------------------------------------------------------

def test_weak_separability_scores_warn(tmp_path):
    assert few_kept_warning("ls", 2 * MIN_KEPT, 0.5) is None
    assert "999 kept samples" in few_kept_warning("ls1998", 1998, 0.5)
    G = tiny_generator(16)
    with pytest.warns(MetricWarning) as caught:
        res = linear_separability(G, Constant(), num_samples=64, keep=0.04, attributes=2, device="cpu",
                                  progress=False)
    said = [str(w.message) for w in caught]
    assert any("3 kept samples per attribute" in s and "fewer than 1,000" in s for s in said), said
    assert any("1 of 2 attributes (Always)" in s for s in said), said
    assert res.results["ls64_keep0.04_z"] >= 1
    table = res.details[res.details.space == "z"]
    assert constant_attributes_warning("ls", table.assign(positive_rate=[0.5, 0.5])) is None
    with pytest.raises(InputError, match="at least 2"):
        linear_separability(G, Constant(), num_samples=64, keep=0.01, device="cpu", progress=False)

    clf = AttributeClassifier(["Male", "Smiling"], input_resolution=16)
    clf_path = save_checkpoint(tmp_path / "C.pt", kind="attribute-classifier", config={"classifier": clf.config},
                               classifier=clf.state_dict())
    ckpt = save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)
    r = invoke("ls", "--ckpt", ckpt, "--classifier", clf_path, "--num", 64, "--keep", 0.04, "--attributes", 2,
            "--device", "cpu", "--no-progress")
    assert r.exit_code == 0, r.output
    warned = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert any("ls64_keep0.04: 3 kept samples per attribute" in line for line in warned), r.stderr


def test_stylegan1_downsampling_is_named_only_where_it_changes_the_crop():
    """The crop of an H-px image has H/2 rows: StyleGAN1 divides them by 256, NVIDIA divides H by 256, so the two rules
    agree below 512 px (one computation, one name) and differ from 512 px (the suffix stays)."""
    assert [downsample_rules_agree(r) for r in (16, 128, 256, 512, 1024)] == [True, True, True, False, False]
    G = tiny_generator(16)
    kw = dict(similarity=mean_squared_l2, batch_size=4, device="cpu", progress=False)
    [named] = evaluate(G, ["ppl6_wend_sg1down"], **kw)
    [plain] = evaluate(G, ["ppl6_wend"], **kw)
    assert named.metric == plain.metric == "ppl6_wend" and named.results == plain.results
    assert named.params["downsample"] == "ada"
    with pytest.raises(InputError, match="ppl6_wend named twice: at 16 px"):
        evaluate(G, ["ppl6_wend", "ppl6_wend_sg1down"], **kw)


@quiet_ls
def test_saved_generated_samples_are_keyed_by_the_labels_they_were_drawn_from(tmp_path):
    """A rerun with other dataset.json labels in the same state folder never reuses samples of the old labels."""
    G = load_generator(CONDITIONAL)
    images = [np.zeros((16, 16, 3), np.uint8)] * 4
    old = write_zip_dataset(tmp_path / "old.zip", images, labels=[0, 0, 0, 0])
    new = write_zip_dataset(tmp_path / "new.zip", images, labels=[3, 3, 3, 3])
    kw = dict(num_samples=20, attributes=3, batch_size=5, chunk_size=10, device="cpu", progress=False)
    with pytest.raises(Crash):  # the first chunk (two batches) is saved, drawn with the old labels
        linear_separability(G, CrashingColours(fail_at=3), data=old, state_dir=tmp_path / "state", **kw)
    with pytest.raises(InputError, match="other parameters"):  # refused: the folder holds another run
        linear_separability(G, CrashingColours(), data=new, state_dir=tmp_path / "state", **kw)
