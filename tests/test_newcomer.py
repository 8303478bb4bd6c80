"""What a first run meets: bundled networks by name, the README's offline example, --help defaults, report
tables that fit a terminal, one-line refusals, the demo's table and its figures' labels."""

import json
import re
import shlex
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from stylegan_core import load_generator, save_checkpoint
from stylegan_core.data.toyfaces import write_toyfaces
from stylegan_core.errors import InputError
from stylegan_metrics import MetricResult, bundled_files, figures, load_classifier
from stylegan_metrics.demo import SHORT, _meaning, _report_table, demo_metrics, printed_table, DemoSizes
from stylegan_metrics.engine.sampling import check_truncation
from stylegan_metrics.report import fit_to_width, read_results, write_report
from stylegan_metrics_cli import generate as generate_module, report as report_module
from stylegan_metrics_cli.generate import parse_seeds
from stylegan_metrics_cli.main import main
from stylegan_metrics_cli.options import NetworkFile, parse_weights
from helpers import invoke, tiny_generator

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"


def refused(result, *needles):
    """Exit 2, no traceback, and the error names every needle."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    for needle in needles:
        assert needle in result.output, result.output


# Bundled networks by name

def network_params():
    """(command, option, kind) for every --ckpt / --classifier / convert SOURCE of every command."""
    found = []
    for name, command in main.commands.items():
        for param in command.params:
            if param.name in ("ckpt", "classifier", "source"):
                found.append((name, param.name, param.type))
    return found


def test_every_ckpt_and_classifier_option_takes_the_bundled_name():
    params = network_params()
    names = {(c, p) for c, p, _ in params}
    assert {("fid", "ckpt"), ("evaluate", "ckpt"), ("ppl", "ckpt"), ("ls", "ckpt"), ("generate", "ckpt"),
            ("ls", "classifier"), ("evaluate", "classifier"), ("convert", "source")} <= names
    files = bundled_files()
    for command, name, kind in params:
        assert isinstance(kind, NetworkFile), (command, name)
        expected = files["classifier" if name == "classifier" else "generator"]
        assert kind.convert("toyfaces", None, None) == str(expected), (command, name)
        assert kind.convert("other.pt", None, None) == "other.pt"
    assert load_generator(files["generator"]).img_resolution == 32
    assert len(load_classifier(files["classifier"]).attributes) == 40


def test_generate_and_convert_with_the_bundled_generator(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("generate", "--ckpt", "toyfaces", "--seeds", "0-1", "--out", "grid.png")
    assert result.exit_code == 0, result.output
    assert Image.open("grid.png").size == (2 * 32, 32)
    result = invoke("convert", "toyfaces", "G.pt")
    assert result.exit_code == 0, result.output
    assert load_generator("G.pt").img_resolution == 32


def test_a_file_named_toyfaces_makes_the_name_ambiguous(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    G = tiny_generator(16)
    save_checkpoint(tmp_path / "toyfaces", G=G, G_ema=G)
    refused(invoke("generate", "--ckpt", "toyfaces", "--seeds", "0", "--out", "a.png"), "./toyfaces", "--ckpt")
    refused(invoke("ls", "--ckpt", "./toyfaces", "--classifier", "toyfaces"), "./toyfaces", "--classifier")
    result = invoke("generate", "--ckpt", "./toyfaces", "--seeds", "0", "--out", "a.png")  # the file itself
    assert result.exit_code == 0, result.output
    assert Image.open("a.png").size == (16, 16)


# The README's offline example

def readme_offline_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- offline:begin -->\s*```bash\n(.*?)```\s*<!-- offline:end -->", text, re.S).group(1)
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def small_counts(command: str) -> str:
    """The README's counts scaled down for a test: 2000 images / 2k samples -> 64, 500 pairs -> 16."""
    return command.replace("--num 2000", "--num 64").replace("2k", "64").replace("ppl500", "ppl16")


def test_readme_offline_example_runs_without_weights(tmp_path, monkeypatch, metrics_home):
    monkeypatch.chdir(tmp_path)
    commands = readme_offline_commands()
    assert len(commands) == 2 and all(c.startswith("stylegan-metrics ") for c in commands)
    assert "--ckpt toyfaces" in commands[1] and "--classifier toyfaces" in commands[1]
    for command in map(small_counts, commands):
        result = invoke(*shlex.split(command)[1:], "--no-progress")
        assert result.exit_code == 0, (command, result.output)
    lines = [json.loads(line) for line in Path("offline.jsonl").read_text().splitlines()]
    values = {k: v for line in lines for k, v in line["results"].items()}
    assert set(values) == {"fid64_full", "kid64_full", "is64_mean", "is64_std", "ppl16_wend", "ls64_z", "ls64_w"}
    assert all(np.isfinite(v) for v in values.values())
    assert 1 <= values["is64_mean"] <= 6 and values["fid64_full"] > 0
    assert not list(metrics_home.glob("**/*.pth"))  # nothing downloaded (offline mode would have refused)


# --help shows --num defaults

NUM_DEFAULTS = {"fid": "50,000", "ppl": "100,000", "ls": "200,000"}


def test_help_of_every_command_with_num_shows_its_default():
    with_num = {name for name, command in main.commands.items()
                if any(p.name == "num" for p in command.params) and name != "toyfaces"}
    assert with_num == set(NUM_DEFAULTS)
    for name, default in NUM_DEFAULTS.items():
        result = invoke(name, "--help")
        assert result.exit_code == 0
        text = " ".join(result.output.split())
        assert f"(default: {default}" in text, (name, text)


def test_metric_command_defaults_match_their_help():
    for name in ("ppl", "ls"):
        [num] = [p for p in main.commands[name].params if p.name == "num"]
        assert f"{num.default:,}" == NUM_DEFAULTS[name]


# report fits a terminal

def wide_results(path: Path) -> Path:
    for kimg in (0, 200):
        MetricResult("ls", {"ls_z": 3182.25, "ls_w": 119.0},
                     params=dict(attributes=[f"Attribute_{i}" for i in range(40)] * 5, seed=0, keep=0.5),
                     total_time=10.5, num_gpus=1, timestamp=1000.0,
                     snapshot_pkl=f"/a/very/long/folder/name/runs/00003-toyfaces/network-snapshot-{kimg:06d}.pt",
                     ).to_jsonl(path)
    return path


def test_fit_to_width_keeps_every_line_within_the_width(tmp_path):
    frame = read_results(wide_results(tmp_path / "r.jsonl"))
    assert len(write_report(frame, "markdown").splitlines()[2]) > 2000  # the whole table: every value
    for width in (40, 80, 120):
        lines = fit_to_width(frame, width).splitlines()
        assert all(len(line) <= width for line in lines), width
        assert "…" in lines[2] and "network-snapshot-000000.pt" in lines[2]  # the file name is the end kept
    text = fit_to_width(frame, 80)
    assert "more columns, --wide shows all" in text.splitlines()[-1]
    assert "3182.25" in fit_to_width(frame, 200)


def test_report_on_a_terminal_fits_it_and_wide_or_files_keep_everything(tmp_path, monkeypatch):
    path = wide_results(tmp_path / "r.jsonl")
    monkeypatch.setattr(report_module, "stdout_is_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", "100")
    result = invoke("report", path)
    assert result.exit_code == 0, result.output
    assert max(map(len, result.output.splitlines())) <= 100
    wide = invoke("report", path, "--wide").output
    assert "Attribute_39" in wide and max(map(len, wide.splitlines())) > 2000
    csv = invoke("report", path, "--format", "csv").output
    assert "Attribute_39" in csv and "/a/very/long/folder" in csv
    monkeypatch.setattr(report_module, "stdout_is_terminal", lambda: False)  # a pipe: the whole table
    assert invoke("report", path).output == wide


def test_a_failed_plot_prints_the_table_then_one_error(tmp_path):
    path = tmp_path / "one.jsonl"
    MetricResult("fid50k", {"fid50k": 7.25}, snapshot_pkl="G.pt").to_jsonl(path)
    result = invoke("report", path, "--plot", tmp_path / "p.png")
    refused(result, "a plot needs at least two snapshots")
    assert result.output.index("| snapshot") < result.output.index("Error:")
    assert "7.25" in result.output and not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("line, needle", [
    ('{"results": {"a": 1}, "params": {"seed": 1' + "0" * 5000 + '}}', "more than 4300 digits"),
    ('{"results": {"a": 1' + "0" * 400 + '}}', "result 'a' is an integer of 401 digits"),
])
def test_report_refuses_integers_too_long_to_read(tmp_path, line, needle):
    path = tmp_path / "big.jsonl"
    path.write_text(line + "\n")
    refused(invoke("report", path), f"{path}:1:", needle)


def test_report_keeps_integers_beyond_64_bits_as_text(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"results": {"a": 1.5}, "params": {"seed": 10**30}}) + "\n")
    result = invoke("report", path, "--format", "csv")
    assert result.exit_code == 0, result.output
    assert str(10**30) in result.output


# One-line refusals

def test_seeds_are_counted_before_they_are_expanded():
    with pytest.raises(click.BadParameter, match=r"seeds must lie in \[0, 2\*\*32\)"):
        parse_seeds("0-10000000000")
    with pytest.raises(click.BadParameter, match="4,294,967,296 seeds; at most 1,000,000"):
        parse_seeds("0-4294967295")  # a list of 4e9 ints would need 100+ GB
    assert parse_seeds("5-7", limit=3) == [5, 6, 7]
    with pytest.raises(click.BadParameter, match="4 seeds; at most 3"):
        parse_seeds("5-7,9", limit=3)


@pytest.mark.parametrize("args, needle", [
    (["generate", "--ckpt", "toyfaces", "--seeds", "0-10000000000", "--out", "g.png"], "2**32"),
    (["generate", "--ckpt", "toyfaces", "--seeds", "0-4294967295", "--out", "g.png"], "at most 1,000,000"),
    (["generate", "--ckpt", "toyfaces", "--seeds", "0", "--truncation", "1e308", "--out", "g.png"], "-10.0<=x<=10.0"),
    (["fid", "--ckpt", "toyfaces", "--data", "x.npz", "--truncation", "-11"], "-10.0<=x<=10.0"),
    (["toyfaces", "--num", "1", "--resolution", "65536", "--out", "t.zip"], "16<=x<=1024"),
    (["toyfaces", "--num", "1", "--resolution", "48", "--out", "t.zip"], "power of two from 16 to 1024"),
    (["generate", "--ckpt", FIXTURES / "nvidia_ada_conditional.pkl", "--seeds", "0", "--out", "g.png"],
     "choose one with --class N (0..3)"),
    (["generate", "--ckpt", FIXTURES / "nvidia_ada_conditional.pkl", "--seeds", "0", "--class", "4", "--out", "g.png"],
     "--class 4: the generator has classes 0..3"),
    (["generate", "--ckpt", "toyfaces", "--seeds", "0", "--class", "1", "--out", "g.png"],
     "--class is for conditional generators"),
])
def test_bad_generate_and_toyfaces_input_is_one_line(tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    refused(invoke(*args), needle)
    assert list(tmp_path.iterdir()) == []


def test_python_refuses_the_same_bounds():
    with pytest.raises(InputError, match=r"\[-10, 10\]"):
        check_truncation(1e308)
    assert check_truncation(-10) == -10.0
    with pytest.raises(InputError, match="power of two from 16 to 1024"):
        write_toyfaces("never.zip", 1, resolution=2048)


def test_generate_with_class_matches_the_conditional_generator(tmp_path):
    pkl = FIXTURES / "nvidia_ada_conditional.pkl"
    result = invoke("generate", "--ckpt", pkl, "--seeds", "3,5", "--class", "2", "--out", tmp_path / "imgs")
    assert result.exit_code == 0, result.output
    G = load_generator(pkl)
    z = torch.from_numpy(np.random.RandomState(5).randn(1, G.z_dim)).float()
    c = torch.nn.functional.one_hot(torch.tensor([2]), G.c_dim).float()
    with torch.no_grad():
        expected = (G(z, c, noise_mode="const") * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0)
        other = (G(z, torch.roll(c, 1, 1), noise_mode="const") * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    image = np.asarray(Image.open(tmp_path / "imgs" / "seed0005.png"))
    assert np.array_equal(image, expected.numpy().squeeze())
    assert not np.array_equal(image, other[0].permute(1, 2, 0).numpy().squeeze())


def test_a_grid_too_large_for_memory_is_refused_before_generating(tmp_path, monkeypatch):
    monkeypatch.setattr(generate_module, "MAX_GRID_BYTES", 3 * 32 * 32 * 3)
    monkeypatch.setattr(generate_module, "generate_images", lambda *a, **k: pytest.fail("generated"))
    refused(invoke("generate", "--ckpt", "toyfaces", "--seeds", "0-3", "--out", tmp_path / "g.png"),
            "give a folder as --out")


# Help texts and --weights

def test_help_points_to_the_right_places():
    text = " ".join(invoke("fid", "--help").output.split())
    assert "docs/networks.md" in text and "README" not in text
    ppl = " ".join(invoke("ppl", "--help").output.split())
    assert "NETWORK=PATH naming it (NETWORK: a --features or --similarity name" in ppl


@pytest.mark.parametrize("values, expected", [
    ((), None),
    (("a.pth",), "a.pth"),
    (("inception-v3=a.pth",), {"inception-v3": "a.pth"}),
    (("inception-v3=a=b.pth", "lpips-vgg16=c.pth"), {"inception-v3": "a=b.pth", "lpips-vgg16": "c.pth"}),
])
def test_parse_weights(values, expected):
    assert parse_weights(values) == expected


@pytest.mark.parametrize("values, needle", [
    (("foo=bar=baz",), "'foo' before '=' is not a network name"),
    (("inception-v3=",), "no file after 'inception-v3='"),
    (("a.pth", "b.pth"), "name each network: NETWORK=PATH"),
    (("toyfaces=a.pth", "toyfaces=b.pth"), "toyfaces is given twice"),
])
def test_parse_weights_says_what_is_wrong(values, needle):
    with pytest.raises(click.BadParameter, match=re.escape(needle)):
        parse_weights(values)


def test_weights_name_path_error_reaches_the_command_line():
    refused(invoke("evaluate", "--ckpt", "toyfaces", "--metrics", "fid50k", "--weights", "foo=bar=baz"),
            "'foo' before '=' is not a network name", "inception-v3")


def test_a_file_whose_name_has_an_equals_sign_is_a_path(tmp_path):
    path = tmp_path / "foo=bar.pth"
    path.write_bytes(b"")
    assert parse_weights((str(path),)) == str(path)


# The demo's table

def demo_results(sizes: DemoSizes) -> list[MetricResult]:
    out = []
    for name in demo_metrics(sizes):
        if name.startswith("is"):
            keys = [f"{name}_mean", f"{name}_std"]
        elif name.startswith("ls"):
            keys = [f"{name}_z", f"{name}_w"]
        else:
            keys = [name]
        params = dict(num_samples=10) if name.startswith(("ppl", "ls")) else dict(num_gen=10, reference_n=10)
        if name.startswith("ppl"):
            params["epsilon"] = 1e-4
        out.append(MetricResult(name, {k: 1.5 for k in keys}, params=params, total_time=30.0))
    return out


def test_demo_table_has_short_meanings_and_says_what_its_seconds_count():
    sizes = DemoSizes(fid_gen=10, fid_real=10, ppl=10, ls=10)
    table = _report_table(demo_results(sizes), sizes)
    table.attrs["seconds"] = 60.0
    assert table.short.map(len).max() <= 50 and table.short.nunique() == len(table)
    assert (table.meaning.map(len) > table.short.map(len)).all()
    text = printed_table(table)
    header, *rows = text.splitlines()
    assert header.split() == ["metric", "value", "samples", "seconds*", "meaning"]
    assert "Inception Score, 6 hair states (max 6)" in text and "separability in Z" in text
    assert "total 60 s; seconds*: each metric's time includes the whole pass it shares with others" in text
    assert all(len(line) <= 100 for line in rows[len(table):])
    assert _meaning("is10k", "is10k_std", SHORT) == "IS spread over 10 splits"


# Figures

@pytest.fixture
def captured(monkeypatch):
    """The matplotlib figures the figure functions would save."""
    figs = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path, **kw: figs.append(fig))
    return figs


def test_truncation_sweep_labels_every_column_with_its_psi(captured):
    psis = (1.0, 0.5, 0.0, -1.0)
    figures.truncation_sweep(tiny_generator(16), "t.png", psis=psis, rows=2)
    [ax] = captured[0].axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["psi = 1", "psi = 0.5", "psi = 0", "psi = -1"]


def test_ppl_histogram_names_the_similarity_network_and_counts(captured):
    details = pd.DataFrame(dict(space=["z", "z", "w", "w"], sampling=["full", "end"] * 2,
                                distance=[1.0, 2.0, 3.0, 4.0]))
    values = {"ppl_zfull": 1.0, "ppl_zend": 2.0, "ppl_wfull": 3.0, "ppl_wend": 4.0}
    figures.ppl_histograms(details, values, "p.png", similarity="toyfaces-lpips")
    for ax in captured[0].axes:
        assert ax.get_xlabel().startswith("toyfaces-lpips distance / epsilon^2") and ax.get_ylabel() == "pairs"


def test_ls_entropy_marks_attributes_that_never_occur(captured):
    rows = [dict(attribute=a, space=sp, entropy_bits=0.0 if rate == 0 else 0.5, positive_rate=rate)
            for a, rate in [("Male", 0.4), ("Bald", 0.0), ("Smiling", 0.0)] for sp in ("z", "w")]
    rows[5]["positive_rate"] = 0.1  # Smiling occurs in W's kept samples: not absent
    details = pd.DataFrame(rows)
    assert figures.absent_attributes(details) == ["Bald"]
    figures.ls_entropy(details, "l.png")
    [ax] = captured[0].axes
    labels = {t.get_text(): t.get_color() for t in ax.get_xticklabels()}
    assert labels == {"Male": "black", "Bald (never occurs)": "tab:red", "Smiling": "black"}
    assert "1 attributes with positive rate 0" in ax.get_title()


def test_style_mixing_rows_report_how_much_they_change_a(captured):
    G = tiny_generator(32)
    change = figures.style_mixing_grid(G, "s.png", num_columns=2)
    assert set(change) == {"coarse", "middle", "fine"} and all(0 <= v <= 255 for v in change.values())
    texts = [t.get_text() for ax in captured[0].axes for t in ax.texts]
    assert any(f"from A by {change['coarse']:.0f}/255" in t and "coarse" in t for t in texts)
    assert any("(4-8 px)" in t for t in texts) and any("middle styles\n(16 px)" in t for t in texts)


def test_num_help_says_what_it_counts():
    assert "--num INTEGER RANGE Number of interpolated pairs (default: 100,000)" in " ".join(
        invoke("ppl", "--help").output.split())
    assert "Number of generated samples (default: 200,000)" in " ".join(invoke("ls", "--help").output.split())
