"""The command line: train and generate end to end, seeds, and bad input as one line with exit 2."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from stylegan_core import load_generator, save_checkpoint
from stylegan_metrics_cli.generate import parse_seeds, seed_latents
from stylegan_metrics_cli.main import main
from helpers import tiny_generator

TINY_ARGS = ["--resolution", "8", "--batch", "8", "--z-dim", "16", "--w-dim", "16", "--mapping-layers", "2",
             "--cbase", "128", "--cmax", "16", "--no-progress"]


@pytest.fixture
def ckpt(tmp_path):
    G = tiny_generator(16, seed=5)
    return save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)


def test_parse_seeds():
    assert parse_seeds("0-3,7, 10-11") == [0, 1, 2, 3, 7, 10, 11]
    for bad in ["", "a", "3-1", "1-", "-2"]:
        with pytest.raises(Exception, match="seed"):
            parse_seeds(bad)


def test_train_then_generate(flat_folder, tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(main, ["train", "--data", str(flat_folder), "--kimg", "0.032", "--out", str(run), *TINY_ARGS])
    assert result.exit_code == 0, result.output
    ckpt = run / "network-snapshot-000000.pt"
    assert f"snapshot: {ckpt}" in result.output
    result = runner.invoke(main, ["train", "--data", str(flat_folder), "--kimg", "0.064", "--out", str(run), "--resume", *TINY_ARGS])
    assert result.exit_code == 0, result.output
    grid = tmp_path / "grid.png"
    result = runner.invoke(main, ["generate", "--ckpt", str(ckpt), "--seeds", "0-5", "--out", str(grid)])
    assert result.exit_code == 0, result.output
    assert Image.open(grid).size == (3 * 8, 2 * 8)


def test_generate_per_seed_files_follow_nvidia_latents(ckpt, tmp_path):
    out = tmp_path / "imgs"
    result = CliRunner().invoke(main, ["generate", "--ckpt", str(ckpt), "--seeds", "3,9", "--truncation", "0.5",
                                       "--out", str(out), "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["seed0003.png", "seed0009.png"]
    G = load_generator(ckpt)
    z = torch.from_numpy(np.random.RandomState(9).randn(1, G.z_dim)).float()
    assert torch.equal(seed_latents([9], G.z_dim), z)
    with torch.no_grad():
        expected = (G(z, truncation_psi=0.5, noise_mode="const") * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    assert np.array_equal(np.asarray(Image.open(out / "seed0009.png")), expected[0].permute(1, 2, 0).numpy())


@pytest.mark.parametrize("case", ["missing_ckpt", "corrupt_ckpt", "missing_data", "bad_seeds", "not_pow2"])
def test_bad_input_is_one_line_exit_2_and_keeps_existing_output(tmp_path, flat_folder, case):
    out = tmp_path / "grid.png"
    out.write_bytes(b"precious")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    args = {
        "missing_ckpt": ["generate", "--ckpt", str(tmp_path / "nope.pt"), "--seeds", "0", "--out", str(out)],
        "corrupt_ckpt": ["generate", "--ckpt", str(bad), "--seeds", "0", "--out", str(out)],
        "missing_data": ["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "r"), *TINY_ARGS],
        "bad_seeds": ["generate", "--ckpt", str(bad), "--seeds", "x", "--out", str(out)],
        "not_pow2": ["train", "--data", str(flat_folder), "--out", str(tmp_path / "r"), *TINY_ARGS[2:],
                     "--resolution", "12"],
    }[case]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and "Traceback" not in result.stderr
    if case in ("missing_ckpt", "corrupt_ckpt", "missing_data"):
        assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert out.read_bytes() == b"precious"


def test_console_script_reports_errors_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "stylegan_metrics_cli", "generate", "--ckpt", str(tmp_path / "x.pt"),
                           "--seeds", "0", "--out", str(tmp_path / "g.png")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"Error: {tmp_path / 'x.pt'}: no such checkpoint file"


def test_every_help_text_renders_without_placeholders():
    for name, command in main.commands.items():
        r = CliRunner().invoke(main, [name, "--help"], terminal_width=200)
        assert r.exit_code == 0, (name, r.output)
        assert "None" not in r.output, (name, r.output)  # e.g. an unbounded range shown as "x<=None"
