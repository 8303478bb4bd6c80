"""Faults, signals and careless use: the documented torchrun lines run, signals stop every process and leave no
temporary file, NaN images and wrong shapes are errors, a full disk loses no result, no user file is overwritten."""

import errno
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_core import InputError, save_checkpoint
from stylegan_core.errors import OutputError
from stylegan_core.files import append_atomically
from stylegan_metrics import evaluate, fid
from stylegan_metrics.reference import compute_reference_stats
from stylegan_metrics.report import read_results
from stylegan_metrics.networks.toyfaces_nets import CLASSIFIER_FILE, bundled_path
from stylegan_metrics_cli.main import main
from helpers import (Quadrants, alive, invoke, mean_squared_l2, one_line_error, quadrant_reference,
                     tiny_generator, workers_inside_the_run, write_disc_images)

ROOT = Path(__file__).parent.parent
ENV = dict(os.environ, OMP_NUM_THREADS="1", STYLEGAN_METRICS_OFFLINE="1")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def ckpt(tmp_path):
    G = tiny_generator(32, seed=3)
    return save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)


# ---- 1. the documented torchrun lines -------------------------------------------------------------------------------
def documented_torchrun_lines() -> list[str]:
    lines = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines += [line.split("  #")[0].strip() for line in doc.read_text().splitlines()
                  if line.startswith("torchrun --")]
    return lines


def test_documented_torchrun_lines_pass_every_option_through():
    """torchrun's argparse takes any unambiguous prefix of its options anywhere on the line, and stops at an
    ambiguous one (our --num against --numa-binding); each documented line must reach our command intact."""
    from torch.distributed.run import get_args_parser

    lines = documented_torchrun_lines()
    assert len(lines) >= 3
    for line in lines:
        words = shlex.split(line)
        args = get_args_parser().parse_args(words[1:])
        assert args.module and args.training_script == "stylegan_metrics_cli", line
        tail = args.training_script_args
        tail = tail[1:] if tail[:1] == ["--"] else tail  # some Pythons pass the -- on; our CLI drops it
        assert tail == words[words.index("--") + 1:] and tail[0] in main.commands, line
    with pytest.raises(SystemExit):  # the line as it was documented before: torchrun refuses it
        get_args_parser().parse_args(shlex.split("-m stylegan_metrics_cli fid --ckpt G.pt --num 96"))


@pytest.mark.slow
def test_documented_torchrun_line_runs_on_two_gloo_processes(tmp_path, metrics_home):
    [line] = [line for line in documented_torchrun_lines() if "--nproc-per-node 2" in line and "--device cpu" in line]
    words = shlex.split(line)
    G = tiny_generator(16, seed=3)
    save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)
    ref = compute_reference_stats(write_disc_images(tmp_path / "discs", 12), features="toyfaces", device="cpu",
                                  progress=False, cache=False)
    ref.save(tmp_path / "ref.npz")
    torchrun = Path(sys.executable).parent / words[0]
    proc = subprocess.run([str(torchrun), *words[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=dict(ENV, STYLEGAN_METRICS_HOME=str(metrics_home)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = json.loads((tmp_path / "fid.jsonl").read_text())
    assert line["params"]["num_processes"] == 2 and line["params"]["num_gen"] == 96
    alone = fid(G, ref, num_gen=96, features="toyfaces", device="cpu", progress=False, chunk_size=48)
    assert line["results"]["fid96_full_unbiased"] == pytest.approx(alone.value, rel=1e-9)


# ---- 2. signals -------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sigterm_to_the_gpus_launcher_stops_its_workers(tmp_path, ckpt, metrics_home):
    state = tmp_path / "state"
    launcher = subprocess.Popen([sys.executable, "-m", "stylegan_metrics_cli", "ppl", "--ckpt", str(ckpt),
                                 "--similarity", "toyfaces-lpips", "--num", "1000000", "--device", "cpu", "--gpus", "2",
                                 "--state-dir", str(state), "--no-progress"],
                                env=dict(ENV, STYLEGAN_METRICS_HOME=str(metrics_home)), stderr=subprocess.PIPE)
    workers = []
    try:
        workers = workers_inside_the_run(launcher, state / "ppl1000k_wend" / "manifest.json")
        assert len(workers) == 2 and all(map(alive, workers))
        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(timeout=60) == 128 + signal.SIGTERM
        assert not any(map(alive, workers))  # forwarded and waited for, not orphaned
    finally:
        for pid in [launcher.pid, *workers]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        launcher.communicate()


def test_sigterm_during_an_atomic_write_leaves_no_temporary_file(tmp_path):
    script = ("import sys, time\nfrom stylegan_core.files import atomic_write\n"
              "with atomic_write(sys.argv[1]) as f:\n    f.write(b'half'); f.flush(); print('ready', flush=True)\n"
              "    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "out.bin")], stdout=subprocess.PIPE,
                            text=True, env=ENV)
    assert proc.stdout.readline() == "ready\n"
    assert len(list(tmp_path.glob(".out.bin.*.tmp"))) == 1
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM  # still ends as the signal says
    assert list(tmp_path.iterdir()) == []


# ---- 3 and 9. images: finite, as declared ---------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_truncation_is_refused(tmp_path, ckpt, value):
    one_line_error(invoke("fid", "--ckpt", ckpt, "--data", tmp_path / "ref.npz", "--truncation", value), "finite",
                   last_line=True)  # after click's usage line and hint
    one_line_error(invoke("generate", "--ckpt", ckpt, "--seeds", "0-3", "--truncation", value,
                          "--out", tmp_path / "grid.png"), "finite", last_line=True)
    assert not (tmp_path / "grid.png").exists()
    with pytest.raises(InputError, match="truncation psi must be a finite number"):
        fid(tiny_generator(16), quadrant_reference(), features=Quadrants(), num_gen=4, truncation_psi=float(value),
            device="cpu", progress=False)


@pytest.mark.parametrize("change,message", [
    (lambda out: out * float("nan"), "NaN or Inf pixels in 16 of 16 images"),
    (lambda out: out[:, :, ::2, ::2], r"shape \[16, 3, 8, 8\], not the \[16, 3, 16, 16\] it declares"),
    (lambda out: out[:-1], r"shape \[15, 3, 16, 16\], not the \[16, 3, 16, 16\]"),
])
def test_generator_output_must_be_finite_and_as_declared(change, message):
    G = tiny_generator(16)
    G.synthesis.register_forward_hook(lambda module, args, out: change(out))
    with pytest.raises(InputError, match=message):
        fid(G, quadrant_reference(), features=Quadrants(), num_gen=16, batch_size=16, device="cpu", progress=False)
    with pytest.raises(InputError, match=message):  # PPL: 8 pairs, 16 endpoints in one call
        evaluate(G, ["ppl8_wend"], similarity=mean_squared_l2, batch_size=8, device="cpu", progress=False)


def test_generate_refuses_a_generator_that_draws_nan(tmp_path):
    G = tiny_generator(16)
    with torch.no_grad():
        G.synthesis.to_rgb.conv.bias.fill_(float("nan"))
    path = save_checkpoint(tmp_path / "nan.pt", G=G, G_ema=G)
    one_line_error(invoke("generate", "--ckpt", path, "--seeds", "0-3", "--out", tmp_path / "imgs"), "NaN")
    assert not (tmp_path / "imgs").exists()  # no black PNGs


def test_sample_counts_and_kept_samples_are_checked_the_same_everywhere(tmp_path, ckpt):
    with pytest.raises(InputError, match="a metric needs at least 2 samples, not 0"):
        fid(tiny_generator(16), quadrant_reference(), features=Quadrants(), num_gen=0, device="cpu")
    with pytest.raises(InputError, match="a metric needs at least 2 samples, not 1"):
        evaluate(tiny_generator(16), ["fid1_full"], data=quadrant_reference(), device="cpu")
    r = invoke("ls", "--ckpt", ckpt, "--classifier", bundled_path(CLASSIFIER_FILE), "--keep", "1e-9", "--num", "1000")
    one_line_error(r, "keep 1e-09 of 1000 samples keeps 0 per attribute; an SVM needs at least 2")
    one_line_error(invoke("ls", "--ckpt", ckpt, "--classifier", "c.pt", "--keep", "nan"), "finite", last_line=True)


def test_alpha_channel_of_reference_images_is_dropped_with_one_warning(tmp_path, metrics_home):
    folder = tmp_path / "rgba"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (16, 16, 4), dtype=np.uint8), "RGBA").save(folder / f"{i}.png")
    with pytest.warns(UserWarning) as caught:
        stats = compute_reference_stats(folder, features=Quadrants(), device="cpu", progress=False, cache=False)
    assert [str(w.message) for w in caught if "alpha" in str(w.message)] == [
        f"{folder}: 0.png (and maybe others) has an alpha channel, which is dropped: images are read as RGB"]
    rgb = np.stack([np.asarray(Image.open(folder / f"{i}.png"))[..., :3] for i in range(6)])
    expected = Quadrants()(torch.from_numpy(rgb).permute(0, 3, 1, 2)).double().mean(0).numpy()
    np.testing.assert_allclose(stats.mu, expected, rtol=1e-6)


# ---- 4. a full disk loses no result -----------------------------------------------------------------------------
def test_failed_append_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "runs.jsonl"
    path.write_bytes(b'{"results": {"a": 1}}\n')
    real_write = os.write

    def half_then_full(fd, data):
        if len(data) > 4:
            return real_write(fd, bytes(data[:4]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OutputError, match="cannot write .*runs.jsonl: No space left on device"):
        append_atomically(path, b'{"results": {"b": 2}}\n')
    with pytest.raises(OutputError):
        append_atomically(tmp_path / "new.jsonl", b'{"results": {"b": 2}}\n')
    monkeypatch.undo()
    assert path.read_bytes() == b'{"results": {"a": 1}}\n' and not (tmp_path / "new.jsonl").exists()
    path.write_bytes(b'{"results": {"a": 1}}')  # an unfinished line of another tool: the next one starts anew
    append_atomically(path, b'{"results": {"b": 2}}\n')
    assert path.read_bytes() == b'{"results": {"a": 1}}\n{"results": {"b": 2}}\n'


def test_report_skips_a_last_line_cut_short(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text('{"results": {"fid": 3.5}, "metric": "fid"}\n{"results": {"fid": 4')
    with pytest.warns(UserWarning, match=r"runs.jsonl:2: an unfinished last line is skipped"):
        frame = read_results(path)
    assert frame["fid"].tolist() == [3.5]
    path.write_text('{"results": {"fid": 4\n{"results": {"fid": 3.5}, "metric": "fid"}\n')
    one_line_error(invoke("report", path), "runs.jsonl:1: not a JSON line")  # only the last line may be cut


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs (root only)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def test_full_disk_keeps_the_file_and_the_state_and_says_the_result(tmp_path, small_disk, ckpt):
    out, state = small_disk / "runs.jsonl", tmp_path / "state"
    old = (json.dumps({"results": {"x": 1.0}, "pad": "p" * 4000}) + "\n").encode()
    out.write_bytes(old)  # the next line must take a new page of the tmpfs
    fd = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 1024)
    except OSError:
        pass
    finally:
        os.close(fd)
    args = ["ppl", "--ckpt", ckpt, "--similarity", "toyfaces-lpips", "--num", "8", "--device", "cpu", "--out", out,
            "--state-dir", state, "--no-progress"]
    r = invoke(*args)
    one_line_error(r, f"cannot write {out}: No space left on device", "the results were ppl8_wend = ",
                   f"the saved chunks in {state} are kept")
    assert out.read_bytes() == old and (state / "ppl8_wend" / "chunk-000000.npz").is_file()
    said = float(re.search(r"ppl8_wend = ([0-9.e+-]+);", r.output).group(1))  # every digit
    (small_disk / "filler").unlink()
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["results"]["ppl8_wend"] == said
    assert not state.exists()


def test_a_folder_as_output_is_refused_before_the_work(tmp_path):
    G = tiny_generator(16)
    calls = []
    G.synthesis.register_forward_hook(lambda *args: calls.append(1))
    with pytest.raises(OutputError, match="it is a folder"):
        evaluate(G, ["ppl8_wend"], similarity=mean_squared_l2, device="cpu", progress=False, out=tmp_path)
    assert calls == []


def test_read_only_output_is_refused_before_the_work(tmp_path, small_disk, ckpt):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    r = invoke("fid", "--ckpt", ckpt, "--data", tmp_path / "missing.npz", "--out", small_disk / "runs.jsonl",
               "--state-dir", tmp_path / "state")
    one_line_error(r, f"cannot write {small_disk / 'runs.jsonl'}: Read-only file system")
    assert "no such statistics file" not in r.output  # refused before the reference is even read


# ---- 10. no user file is overwritten ----------------------------------------------------------------------------
def test_stats_writes_only_npz_files(tmp_path):
    image = write_disc_images(tmp_path / "data", 4) / "0000.png"
    before = image.read_bytes()
    one_line_error(invoke("stats", "--data", tmp_path / "data", "--out", image), "statistics files end in .npz")
    assert image.read_bytes() == before


def test_convert_refuses_to_write_over_its_source(tmp_path, ckpt, monkeypatch):
    before = ckpt.read_bytes()
    (tmp_path / "link.pt").symlink_to(ckpt)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    for out in (ckpt, tmp_path / "link.pt", "sub/../G.pt"):
        one_line_error(invoke("convert", ckpt, out), "is the source file itself")
    assert ckpt.read_bytes() == before


def test_state_dir_never_touches_files_it_did_not_write(tmp_path, metrics_home):
    data = write_disc_images(tmp_path / "data", 4)
    folder = tmp_path / "mine"
    folder.mkdir()
    np.savez(folder / "chunk-000000.npz", weights=np.arange(3))
    (folder / "manifest.json").write_text("my packing list")
    args = ["stats", "--data", data, "--out", tmp_path / "s.npz", "--features", "toyfaces", "--device", "cpu",
            "--state-dir", folder, "--no-progress"]
    one_line_error(invoke(*args), "manifest.json is not a state manifest of this tool", "nothing in it was changed")
    (folder / "manifest.json").write_text("[1, 2]")
    one_line_error(invoke(*args), "manifest.json is not a state manifest of this tool")
    (folder / "manifest.json").unlink()
    one_line_error(invoke(*args), "holds chunk-000000.npz, which is not a chunk file of this tool")
    assert sorted(p.name for p in folder.iterdir()) == ["chunk-000000.npz"]
    assert np.load(folder / "chunk-000000.npz")["weights"].tolist() == [0, 1, 2]
    (folder / "chunk-000000.npz").unlink()
    (folder / "chunk-000000.npz").mkdir()
    one_line_error(invoke(*args), "holds chunk-000000.npz, which is not a chunk file of this tool")


@pytest.mark.parametrize("name,fmt", [("grid.jpg", "JPEG"), ("grid.webp", "WEBP"), ("grid.PNG", "PNG")])
def test_generate_writes_a_grid_for_any_image_suffix(tmp_path, ckpt, name, fmt):
    r = invoke("generate", "--ckpt", ckpt, "--seeds", "0-5", "--out", tmp_path / name)
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / name) as img:
        assert img.format == fmt and img.size == (3 * 32, 2 * 32)
