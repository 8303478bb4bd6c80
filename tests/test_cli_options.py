"""The metric commands' shared options: one definition and help text each, --weights read alike everywhere,
evaluate's names listed from the registry and refused as stylegan_metrics.evaluate refuses them."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import stylegan_metrics
from stylegan_core.errors import InputError
from stylegan_metrics import metrics as registry
from stylegan_metrics.engine.metric import MetricFamily
from stylegan_metrics_cli import evaluate as evaluate_module, fid as fid_module, options, ppl as ppl_module
from stylegan_metrics_cli.main import main

from helpers import tiny_generator, write_flat_images

METRIC_COMMANDS = ("evaluate", "fid", "stats", "ppl", "ls")
# option -> the commands that carry it as the shared option (stats' --out is the .npz it writes: its own option)
SHARED = {
    "--ckpt": {"evaluate", "fid", "ppl", "ls", "generate"},
    "--class": {"evaluate", "fid", "ppl", "ls"},
    "--data": {"evaluate", "fid", "stats", "ppl", "ls"},
    "--features": {"evaluate", "fid", "stats"},
    "--similarity": {"evaluate", "ppl"},
    "--weights": {"evaluate", "fid", "stats", "ppl"},
    "--classifier": {"evaluate", "ls"},
    "--cov": {"evaluate", "fid"},
    "--out": {"evaluate", "fid", "ppl", "ls"},
    "--state-dir": set(METRIC_COMMANDS),
    "--chunk-size": set(METRIC_COMMANDS),
    "--gpus": set(METRIC_COMMANDS),
    "--device": {*METRIC_COMMANDS, "generate", "train", "train-classifier"},
    "--batch": {*METRIC_COMMANDS, "generate"},
    "--seed": {"evaluate", "fid", "ppl", "ls", "train", "train-classifier"},
    "--no-progress": {*METRIC_COMMANDS, "train", "train-classifier"},
}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def option(command: str, name: str):
    """The click Option `name` of a command, or None."""
    return next((p for p in main.commands[command].params if name in p.opts), None)


def flat(text: str) -> str:
    """Help text without any whitespace (click wraps lines, also after hyphens)."""
    return "".join(text.split())


@pytest.mark.parametrize("name", sorted(SHARED))
def test_a_shared_option_has_one_help_text_in_every_command(name):
    carriers = SHARED[name]
    helps = {command: option(command, name).help for command in carriers}
    assert len(set(helps.values())) == 1, helps
    [text] = set(helps.values())
    assert text
    for command in carriers:
        assert flat(text) in flat(invoke(command, "--help").output), command
    if name != "--out":  # every metric command that has the option has the shared one
        assert {c for c in METRIC_COMMANDS if option(c, name) is not None} == carriers & set(METRIC_COMMANDS)


def test_cov_help_states_each_command_family_default():
    assert option("fid", "--cov").default == "unbiased" and option("evaluate", "--cov").default is None
    text = " ".join(option("fid", "--cov").help.split())
    assert "evaluate follows NVIDIA's names (1/N" in text and "fid follows StyleGAN1 and fid() (N - 1)" in text


# --cov: what each default computes (the metric built, not run)

@pytest.fixture
def captured(monkeypatch):
    """The metrics / options each command hands to the engine, instead of running them."""
    seen: dict = {}

    def run_metric_command(ckpt, metrics, **kwargs):
        seen.update(metrics=metrics, **kwargs)
        return []

    def run_on_generator(ckpt, gen, run, **kwargs):
        return run("G", "cpu")

    def evaluate(G, names, **kwargs):
        seen.update(G=G, names=names, **kwargs)
        return []

    def compute_reference_stats(data, **kwargs):
        seen.update(kwargs)
        raise InputError("stopped after the options were read")

    for module in (fid_module, ppl_module):
        monkeypatch.setattr(module, "run_metric_command", run_metric_command)
    monkeypatch.setattr(fid_module, "compute_reference_stats", compute_reference_stats)
    monkeypatch.setattr(evaluate_module, "run_on_generator", run_on_generator)
    monkeypatch.setattr(stylegan_metrics, "evaluate", evaluate)
    return seen


@pytest.mark.parametrize("args, name, cov", [
    ((), "fid50k_full_unbiased", "unbiased"),
    (("--cov", "unbiased"), "fid50k_full_unbiased", "unbiased"),
    (("--cov", "biased"), "fid50k_full", "biased"),
])
def test_fid_cov_default_is_the_unbiased_covariance(captured, tmp_path, args, name, cov):
    result = invoke("fid", "--ckpt", "toyfaces", "--data", tmp_path, *args)
    assert result.exit_code == 0, result.output
    [metric] = captured["metrics"]
    assert metric.name == name and metric.cov == cov


@pytest.mark.parametrize("args, cov, name, built_cov", [
    ((), None, "fid10k_full", "biased"),  # evaluate's default: NVIDIA's biased covariance
    (("--cov", "unbiased"), "unbiased", "fid10k_full_unbiased", "unbiased"),
    (("--cov", "biased"), "biased", "fid10k_full", "biased"),
])
def test_evaluate_hands_its_names_and_cov_to_stylegan_metrics_evaluate(captured, tmp_path, args, cov, name,
                                                                         built_cov):
    result = invoke("evaluate", "--ckpt", "toyfaces", "--metrics", "fid10k_full,ls", "--data", tmp_path, *args)
    assert result.exit_code == 0, result.output
    assert captured["names"] == "fid10k_full,ls" and captured["cov"] == cov and captured["G"] == "G"
    assert captured["attributes"] == "40" and captured["data"] == str(tmp_path)
    fid = registry.build_metrics(captured["names"], cov=captured["cov"])[0]  # what evaluate builds from them
    assert fid.name == name and fid.cov == built_cov


# --weights: PATH or NETWORK=PATH wherever it is accepted

def weights_given(captured, tmp_path, monkeypatch, command: str, *args):
    base = {"fid": ("fid", "--ckpt", "toyfaces", "--data", "d"),
            "stats": ("stats", "--data", "d", "--out", "ref.npz"),
            "ppl": ("ppl", "--ckpt", "toyfaces"),
            "evaluate": ("evaluate", "--ckpt", "toyfaces", "--metrics", "fid10k_full")}[command]
    monkeypatch.chdir(tmp_path)
    return invoke(*base, *args), captured.get("weights", "not given")


@pytest.mark.parametrize("command, args, expected", [
    ("fid", ("--weights", "a.pth"), "a.pth"),
    ("fid", ("--weights", "inception-v3=a.pth"), "a.pth"),
    ("fid", ("--features", "toyfaces", "--weights", "toyfaces=a.pth"), "a.pth"),
    ("fid", (), None),
    ("stats", ("--weights", "a.pth"), "a.pth"),
    ("stats", ("--weights", "inception-v3=a.pth"), "a.pth"),
    ("stats", ("--features", "vgg16-fc2", "--weights", "vgg16-fc2=a.pth"), "a.pth"),
    ("ppl", ("--weights", "a.pth"), "a.pth"),
    ("ppl", ("--weights", "lpips-vgg16=a.pth"), "a.pth"),
    ("ppl", ("--similarity", "toyfaces-lpips", "--weights", "toyfaces-lpips=a.pth"), "a.pth"),
    ("evaluate", ("--weights", "a.pth"), "a.pth"),
    ("evaluate", ("--weights", "inception-v3=a.pth"), {"inception-v3": "a.pth"}),
    ("evaluate", ("--weights", "inception-v3=a.pth", "--weights", "lpips-vgg16=b.pth"),
     {"inception-v3": "a.pth", "lpips-vgg16": "b.pth"}),
    ("evaluate", (), None),
])
def test_weights_path_or_network_path(captured, tmp_path, monkeypatch, command, args, expected):
    result, weights = weights_given(captured, tmp_path, monkeypatch, command, *args)
    if command == "stats":  # the fake statistics pass stops the command after reading its options
        assert result.exit_code == 2 and "stopped after the options were read" in result.output
    else:
        assert result.exit_code == 0, result.output
    assert weights == expected


@pytest.mark.parametrize("command", ["fid", "stats", "ppl", "evaluate"])
@pytest.mark.parametrize("args, needle", [
    (("--weights", "foo=a.pth"), "'foo' before '=' is not a network name"),
    (("--weights", "inception-v3="), "no file after 'inception-v3='"),
    (("--weights", "a.pth", "--weights", "b.pth"), "name each network: NETWORK=PATH"),
])
def test_weights_refused_alike_in_every_command(captured, tmp_path, monkeypatch, command, args, needle):
    result, weights = weights_given(captured, tmp_path, monkeypatch, command, *args)
    assert result.exit_code == 2 and needle in result.output and "Traceback" not in result.output
    assert weights == "not given"  # refused while the options are read


@pytest.mark.parametrize("command, args, runs", [
    ("fid", ("--weights", "lpips-vgg16=a.pth"), "inception-v3 (--features)"),
    ("fid", ("--features", "toyfaces", "--weights", "inception-v3=a.pth"), "toyfaces (--features)"),
    ("stats", ("--weights", "vgg16-fc2=a.pth"), "inception-v3 (--features)"),
    ("ppl", ("--weights", "inception-v3=a.pth"), "lpips-vgg16 (--similarity)"),
])
def test_weights_of_a_network_the_command_does_not_run_are_refused(captured, tmp_path, monkeypatch, command, args, runs):
    result, weights = weights_given(captured, tmp_path, monkeypatch, command, *args)
    assert result.exit_code == 2 and f"this command runs {runs}" in result.output, result.output
    assert weights == "not given"


# evaluate's names: listed from the registry, refused as the API refuses them

def test_evaluate_help_lists_every_registry_name():
    text = flat(invoke("evaluate", "--help").output)
    for name in registry.METRICS:
        assert f"{name}," in text or f"{name};" in text, name


def test_evaluate_help_follows_the_registry(monkeypatch):
    extra = MetricFamily("mean", r"mean{count}", lambda *a, **k: None, examples=("mean50k", "mean10k"))
    monkeypatch.setattr(registry, "FAMILIES", [*registry.FAMILIES, extra])
    text = flat(invoke("evaluate", "--help").output)
    last = registry.FAMILIES[-2].examples[-1]  # the registry's last family before the one added here
    assert f"{last},mean50k,mean10k;" in text and all(n in text for f in registry.FAMILIES for n in f.examples)


@pytest.mark.parametrize("names, args", [
    ("fid10k_full,fid10k_full", ()),
    ("ppl_wend,ppl50k_wend", ()),
    ("kid10k,kid10k_full,kid10k", ()),
    ("fid10k_full_unbiased,fid10k_full", ("--cov", "unbiased")),
    ("fid10k_full_unbiased", ("--cov", "biased")),
    ("fid", ()),
    ("nope50k", ()),
    (",", ()),
])
def test_evaluate_refuses_names_as_the_api_does(monkeypatch, names, args):
    kwargs = {"cov": args[1]} if args else {}
    with pytest.raises(InputError) as api:
        stylegan_metrics.evaluate(tiny_generator(), names, **kwargs)
    monkeypatch.setattr(options, "join_process_group", lambda device: pytest.fail("names are checked first"))
    result = invoke("evaluate", "--ckpt", "toyfaces", "--metrics", names, *args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output == f"Error: {api.value}\n"


def test_evaluate_refuses_a_bare_name_twice_with_gen_as_the_api_does(tmp_path, monkeypatch):
    gen = write_flat_images(tmp_path / "gen", num=4)
    with pytest.raises(InputError) as api:
        stylegan_metrics.evaluate(None, "fid,fid", gen=str(gen))
    monkeypatch.setattr(options, "join_process_group", lambda device: pytest.fail("names are checked first"))
    result = invoke("evaluate", "--gen", gen, "--metrics", "fid,fid")
    assert result.exit_code == 2 and result.output == f"Error: {api.value}\n"
    assert result.output == "Error: a metric is named twice: fid\n"
