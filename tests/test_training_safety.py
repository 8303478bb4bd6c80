"""Training runs never replace a snapshot (names, exclusive publication, resume), refuse bad snapshot-metric
options before the first step, and print progress lines off a terminal."""

import errno
import hashlib
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import write_flat_images
from stylegan_core import ImageDataset, Trainer, TrainingOptions, load_checkpoint, train
from stylegan_core.errors import OutputError
from stylegan_core.training import logs, snapshots
from stylegan_core.training import trainer as trainer_module
from stylegan_core.training.snapshots import (find_latest_snapshot, grid_name, publish, snapshot_images,
                                              snapshot_stem)
from stylegan_metrics.report import read_results
from stylegan_metrics.stats import ReferenceStats
from stylegan_metrics_cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: one thread of a shared CPU

TINY = dict(resolution=8, batch=16, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128, channel_max=16)
TINY_ARGS = ["--resolution", "8", "--batch", "16", "--z-dim", "16", "--w-dim", "16", "--mapping-layers", "2",
             "--cbase", "128", "--cmax", "16"]


def cli_train(data, run, *args):
    return CliRunner().invoke(main, ["train", "--data", str(data), "--out", str(run), *TINY_ARGS, *args])


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- snapshot names ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("images, previous, stem", [
    (512, None, "network-snapshot-000000"),      # the first snapshot of a run
    (1008, 512, "network-snapshot-000001"),      # NVIDIA's whole kimg where no earlier snapshot holds it
    (1504, 1008, "network-snapshot-000001_504"),  # the resumed run's next one: 000001 is taken
    (1900, 1504, "network-snapshot-000001_900"),
    (2016, 1900, "network-snapshot-000002"),
    (1001, 1000, "network-snapshot-000001_001"),
    (4000, None, "network-snapshot-000004"),
])
def test_snapshot_names_follow_nvidias_kimg_and_are_new(images, previous, stem):
    assert snapshot_stem(images, previous) == stem
    assert snapshot_images(stem + ".pt") == (images if "_" in stem else images // 1000 * 1000)
    assert grid_name(stem) == "fakes" + stem.removeprefix("network-snapshot-") + ".png"


def test_snapshot_names_sort_by_images_and_refuse_going_back():
    images = [512, 1008, 1504, 1900, 2016, 2500, 10_000, 10_001]
    stems, previous = [], None
    for n in images:
        stems.append(snapshot_stem(n, previous))
        previous = n
    assert len(set(stems)) == len(stems) and sorted(s + ".pt" for s in stems) == [s + ".pt" for s in stems]
    for bad in (1504, 1000):
        with pytest.raises(ValueError):
            snapshot_stem(bad, 1504)
    assert snapshot_images("run/network-snapshot-025000.pkl") == 25_000_000  # NVIDIA's names
    assert snapshot_images("G.pt") is None


def test_latest_snapshot_is_the_one_with_most_images(tmp_path):
    for name in ("network-snapshot-000000.pt", "network-snapshot-000001.pt", "network-snapshot-000001_504.pt",
                 "network-snapshot-000000_900.pt", "network-snapshot-000001_504.pkl", "notes.pt"):
        (tmp_path / name).write_bytes(b"")
    assert find_latest_snapshot(tmp_path).name == "network-snapshot-000001_504.pt"


def test_report_reads_the_kimg_of_both_spellings(tmp_path):
    lines = [{"results": {"fid": v}, "metric": "fid", "snapshot_pkl": name, "params": {}}
             for name, v in (("network-snapshot-000001_504.pt", 2.0), ("network-snapshot-000001.pt", 1.0))]
    (tmp_path / "metric-fid.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    frame = read_results(tmp_path / "metric-fid.jsonl")
    assert list(frame["kimg"]) == [1.0, 1.504] and list(frame["fid"]) == [1.0, 2.0]


# ---- publication never replaces a file -----------------------------------------------------------------------

@pytest.mark.parametrize("links", [True, False])
def test_publish_names_a_file_only_when_the_name_is_free(tmp_path, monkeypatch, links):
    if not links:  # a file system without hard links: check, then rename
        def no_link(src, dst):
            raise OSError(errno.EPERM, "Operation not permitted")
        monkeypatch.setattr(snapshots.os, "link", no_link)
    staged, path = tmp_path / ".a.staged", tmp_path / "a.pt"
    staged.write_bytes(b"new")
    publish(staged, path)
    assert path.read_bytes() == b"new" and not staged.exists()
    staged.write_bytes(b"newer")
    with pytest.raises(OutputError, match="a.pt already exists.*kept as .*a.staged"):
        publish(staged, path)
    assert path.read_bytes() == b"new" and staged.read_bytes() == b"newer"


def test_a_taken_snapshot_name_is_refused_not_replaced(flat_folder, tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(TrainingOptions(kimg=0.064, snap_kimg=0.032, **TINY), ImageDataset(flat_folder, resolution=8), run)

    def another_writer(path, G_ema, kimg):  # takes the name the next snapshot will want
        (run / "network-snapshot-000000_064.pt").write_bytes(b"someone else's")

    with pytest.raises(OutputError, match="network-snapshot-000000_064.pt already exists"):
        trainer.train(progress=False, on_snapshot=another_writer)
    assert (run / "network-snapshot-000000_064.pt").read_bytes() == b"someone else's"
    assert load_checkpoint(run / ".network-snapshot-000000_064.pt.staged")["step"] == 4  # the work is kept


# ---- the measured case: snapshots below 1 kimg, then --resume ------------------------------------------------

def test_resumed_sub_kimg_snapshots_get_new_names_and_one_metric_line_each(flat_folder, tmp_path, metrics_home):
    run = tmp_path / "run"
    metric = ["--metrics", "fid32_full", "--metrics-features", "toyfaces", "--device", "cpu", "--no-progress"]
    first = cli_train(flat_folder, run, "--snap", "0.032", "--kimg", "0.064", *metric)
    assert first.exit_code == 0, first.output
    kept = {name: digest(run / name) for name in ("network-snapshot-000000.pt", "network-snapshot-000000_064.pt")}
    again = cli_train(flat_folder, run, "--snap", "0.032", "--kimg", "0.096", "--resume", *metric)
    assert again.exit_code == 0, again.output
    assert "resuming network-snapshot-000000_064.pt at kimg 0.064" in again.stdout
    assert {name: digest(run / name) for name in kept} == kept  # nothing replaced
    names = sorted(p.name for p in run.glob("network-snapshot-*.pt"))
    assert names == ["network-snapshot-000000.pt", "network-snapshot-000000_064.pt", "network-snapshot-000000_096.pt"]
    assert [load_checkpoint(run / name)["images_seen"] for name in names] == [32, 64, 96]
    assert sorted(p.name for p in run.glob("fakes*.png")) == ["fakes000000.png", "fakes000000_064.png",
                                                              "fakes000000_096.png"]
    lines = records(run / "metric-fid32_full.jsonl")
    assert [line["snapshot_pkl"] for line in lines] == names  # one line per file, in order
    assert len({line["results"]["fid32_full"] for line in lines}) == 3
    assert not list(run.glob(".*staged"))


def test_resume_at_the_asked_kimg_trains_and_writes_nothing(flat_folder, tmp_path):
    run = tmp_path / "run"
    opts = TrainingOptions(kimg=0.032, snap_kimg=0.016, **TINY)
    last = train(flat_folder, run, opts, progress=False)
    before = {p.name: digest(p) for p in run.iterdir() if p.suffix in (".pt", ".png")}
    again = train(flat_folder, run, opts, resume=True, progress=False)
    assert again == last and again.name == "network-snapshot-000000_032.pt"
    assert {p.name: digest(p) for p in run.iterdir() if p.suffix in (".pt", ".png")} == before
    assert "nothing to train: kimg 0.032 reached, --kimg 0.032" in (run / "log.txt").read_text()


def test_a_start_removes_what_a_kill_while_naming_left(flat_folder, tmp_path):
    run = tmp_path / "run"
    opts = TrainingOptions(kimg=0.032, snap_kimg=0.016, **TINY)
    train(flat_folder, run, opts, progress=False)
    never_named = run / ".network-snapshot-000000_048.pt.staged"  # killed before the link
    never_named.write_bytes(b"x")
    linked = run / ".network-snapshot-000000_032.pt.staged"  # killed between the link and the unlink
    os.link(run / "network-snapshot-000000_032.pt", linked)
    refused = run / ".network-snapshot-000000.pt.staged"  # its name was taken by another file: kept
    refused.write_bytes(b"kept")
    train(flat_folder, run, TrainingOptions(kimg=0.048, snap_kimg=0.016, **TINY), resume=True, progress=False)
    assert not linked.exists() and refused.read_bytes() == b"kept"
    assert load_checkpoint(run / "network-snapshot-000000_048.pt")["images_seen"] == 48
    assert not never_named.exists()


# ---- snapshot metrics are checked before the first step ------------------------------------------------------

def stats_file(path, *, dim=240, features="toyfaces", resolution=8, n=100):
    x = np.random.default_rng(0).normal(size=(n, dim))
    ReferenceStats(mu=x.mean(0), sigma=np.cov(x, rowvar=False), n=n, features=features,
                   resolution=resolution).save(path)
    return path


TOY = ["--metrics-features", "toyfaces"]
REFUSED = {  # case -> (arguments after --metrics, a piece of the one error line)
    "unknown metric": (["fid32_full,bogus"], "unknown metric 'bogus'"),
    "named twice": (["fid32_full,fid32_full", *TOY], "names a metric twice"),
    "unknown feature network": (["fid32_full", "--metrics-features", "bogus"],
                                "--metrics fid32_full: unknown feature network 'bogus'"),
    "no weights offline": (["fid32_full"], "download https://"),  # and "or pass --metrics-weights PATH"
    "missing weights file": (["fid32_full", *TOY, "--metrics-weights", "{tmp}/none.pt"], "none.pt"),
    "ls without a classifier": (["ls32"], "--metrics ls32: linear separability needs an attribute classifier"),
    "generator without transform": (["eqt50k_int"], "needs a generator whose input can be transformed"),
    "reference images of another size": (["fid32_full", *TOY, "--metrics-data", "{tmp}/flat16"],
                                         "images are 16x16 but the generator makes 8x8"),
    "statistics of another size": (["fid32_full", *TOY, "--metrics-data", "{tmp}/s16.npz"],
                                   "s16.npz: images are 16x16 but the generator makes 8x8"),
    "statistics of another width": (["fid32_full", *TOY, "--metrics-data", "{tmp}/d15.npz"],
                                    "d15.npz: they have 15 features, toyfaces gives 240"),
    "statistics of another network": (["fid32_full", *TOY, "--metrics-data", "{tmp}/inception.npz"],
                                      "inception.npz: statistics of 'inception-v3' features, not 'toyfaces'"),
    "statistics where images are needed": (["kid32_full", *TOY, "--metrics-data", "{tmp}/s8.npz"],
                                           "the reference must be an image folder"),
    "missing reference": (["fid32_full", *TOY, "--metrics-data", "{tmp}/none"], "no such file or folder"),
    "metric file not writable": (["fid32_full", *TOY], "metric-fid32_full.jsonl: it is a folder"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_bad_snapshot_metrics_are_refused_before_the_first_step(case, flat_folder, tmp_path, metrics_home):
    args, message = REFUSED[case]
    write_flat_images(tmp_path / "flat16", num=4, size=16)
    stats_file(tmp_path / "s16.npz", resolution=16)
    stats_file(tmp_path / "s8.npz")
    stats_file(tmp_path / "d15.npz", dim=15)
    stats_file(tmp_path / "inception.npz", features="inception-v3", dim=2048)  # as wide as inception-v3 is
    run = tmp_path / "run"
    if case == "metric file not writable":
        (run / "metric-fid32_full.jsonl").mkdir(parents=True)
    result = cli_train(flat_folder, run, "--kimg", "0.032", "--snap", "0.016", "--device", "cpu",
                       "--metrics", *[a.format(tmp=tmp_path) for a in args])
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(errors) == 1 and "Traceback" not in result.output, result.output
    assert message in errors[0] and errors[0].startswith(("Error: --metrics ", "Error: --metrics-data "))
    assert "--weights" not in errors[0].replace("--metrics-weights", "")  # train's option names
    assert result.stdout == ""  # not one step: no start line, no tick
    assert not run.exists() or [p.name for p in run.iterdir()] == ["metric-fid32_full.jsonl"]


def test_statistics_that_fit_pass_the_check_and_give_the_metric(flat_folder, tmp_path, metrics_home):
    stats = tmp_path / "flat.npz"
    made = CliRunner().invoke(main, ["stats", "--data", str(flat_folder), "--out", str(stats), "--features",
                                     "toyfaces", "--device", "cpu", "--no-progress"])
    assert made.exit_code == 0, made.output
    result = cli_train(flat_folder, tmp_path / "run", "--kimg", "0.016", "--metrics", "fid32_full", *TOY,
                       "--metrics-data", str(stats), "--device", "cpu", "--no-progress")
    assert result.exit_code == 0, result.output
    assert [r["snapshot_pkl"] for r in records(tmp_path / "run" / "metric-fid32_full.jsonl")] == [
        "network-snapshot-000000.pt"]


# ---- progress lines off a terminal ---------------------------------------------------------------------------

def test_progress_line_says_kimg_rate_and_eta():
    assert logs.progress_line(1504, 4000, 1000, 10.0) == "progress: kimg 1.504 of 4, 100.0 img/s, ETA 25s"
    assert logs.progress_line(0, 4000, 0, 0.0) == "progress: kimg 0.000 of 4, 0.0 img/s, ETA unknown"


def test_off_a_terminal_a_progress_line_comes_after_30_quiet_seconds(flat_folder, tmp_path, monkeypatch):
    """10 steps of 7 s each (a fake clock read once at the start and once per step): tick 0 prints at 7 s, so the
    wait restarts there and a progress line comes at 42 s (35 s after it), none at 35 s; the end prints a tick."""
    now = iter(range(0, 1000, 7))
    monkeypatch.setattr(trainer_module, "clock", lambda: float(next(now)))
    run = tmp_path / "run"
    result = cli_train(flat_folder, run, "--kimg", "0.16", "--snap", "100")  # CliRunner: not a terminal
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    progress = [line for line in lines if line.startswith("progress:")]
    assert progress == ["progress: kimg 0.096 of 0.16, 2.3 img/s, ETA 28s"]  # 96 images in 42 s, 64 to go
    assert [line.split()[0] for line in lines[1:4]] == ["tick", "progress:", "tick"]
    assert "progress:" not in (run / "log.txt").read_text()  # stdout only; log.txt keeps NVIDIA's lines


def test_a_progress_bar_replaces_progress_lines(flat_folder, tmp_path, monkeypatch, capsys):
    class ShownBar:  # as on a terminal: shown unless disabled outright (progress=False)
        def __init__(self, *args, disable=None, **kwargs):
            self.disable = disable is True

        def update(self, n):
            pass

        def set_postfix(self, *args, **kwargs):
            pass

        def close(self):
            pass

    monkeypatch.setattr(trainer_module, "tqdm", ShownBar)
    opts = TrainingOptions(kimg=0.064, snap_kimg=100, **TINY)
    train(flat_folder, tmp_path / "run", opts, status_sec=0)
    assert "progress:" not in capsys.readouterr().out
    train(flat_folder, tmp_path / "run2", opts, progress=False, status_sec=0)  # no bar: a line after every step
    assert capsys.readouterr().out.count("progress:") == 2  # steps 2 and 3; steps 1 and 4 print ticks


def test_reports_read_kimg_by_the_snapshot_naming_rule(tmp_path):
    path = tmp_path / "metric-fid32_full.jsonl"
    for name in ("network-snapshot-000001.pt", "network-snapshot-000001_504.pt", "network-snapshot-000002",
                 "network-snapshot-000001_504-old.pt"):
        path.open("a").write(json.dumps({"results": {"fid32_full": 1.0}, "snapshot_pkl": name}) + "\n")
    kimg = dict(zip(read_results(path)["snapshot"].map(os.path.basename), read_results(path)["kimg"]))
    assert kimg["network-snapshot-000001.pt"] == 1.0 and kimg["network-snapshot-000001_504.pt"] == 1.504
    assert kimg["network-snapshot-000002"] == 2.0 and np.isnan(kimg["network-snapshot-000001_504-old.pt"])
