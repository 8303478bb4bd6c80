"""Watching a run: a status line per tick, log.txt, stats.jsonl with NVIDIA's keys, metric lines per snapshot,
resume without repeated records, TensorBoard events, and a clean stop when training diverges."""

import json
import math
import sys
import types

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from stylegan_core import ImageDataset, Trainer, TrainingOptions, load_checkpoint, load_generator, train
from stylegan_core.training import stylegan1_step
from stylegan_core.training.training_stats import TickStats
from stylegan_metrics_cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks: one thread of a shared CPU

TINY = dict(resolution=8, batch=16, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128, channel_max=16)
TINY_ARGS = ["--resolution", "8", "--batch", "16", "--z-dim", "16", "--w-dim", "16", "--mapping-layers", "2",
             "--cbase", "128", "--cmax", "16"]
KEYS = {  # every tick of a CPU stylegan run with R1 on every step
    "Progress/tick", "Progress/kimg", "Progress/w_avg_norm", "Timing/total_sec", "Timing/sec_per_tick",
    "Timing/sec_per_kimg", "Timing/img_per_sec", "Timing/maintenance_sec", "Timing/total_hours", "Timing/total_days",
    "Resources/peak_cpu_mem_gb", "Resources/cpu_mem_gb", "Loss/G/loss", "Loss/D/loss", "Loss/r1_penalty", "Loss/D/reg",
    "Loss/scores/fake", "Loss/scores/real", "Loss/signs/fake", "Loss/signs/real", "timestamp",
}
NVIDIA_METRIC_KEYS = {"results", "metric", "total_time", "total_time_str", "num_gpus", "snapshot_pkl", "timestamp"}


def cli_train(data, run, *args):
    return CliRunner().invoke(main, ["train", "--data", str(data), "--out", str(run), *TINY_ARGS, *args])


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def means(stats, key):
    return [r[key]["mean"] for r in stats]


def test_tick_stats_are_numpys_mean_and_population_std():
    rng = np.random.RandomState(0)
    a, b, c = rng.randn(5, 1), rng.randn(7) * 3 + 1, rng.randn(4, 2)
    stats = TickStats()
    stats.report("x", torch.from_numpy(a).float())
    stats.report("y", torch.from_numpy(c).float())
    stats.report("x", torch.from_numpy(b).float())
    out = stats.collect()
    x = np.concatenate([a.ravel(), b]).astype(np.float32).astype(np.float64)
    assert out["x"]["num"] == 12 and out["y"]["num"] == 8
    assert out["x"]["mean"] == pytest.approx(x.mean(), rel=1e-12)
    assert out["x"]["std"] == pytest.approx(x.std(ddof=0), rel=1e-9)
    assert stats.collect() == {}  # a tick starts afresh
    stats.report("z", torch.tensor([1.0, float("nan")]))
    stats.report("w", torch.tensor([1.0]))
    assert stats.nonfinite() == ["z"]


def test_redirected_run_writes_tick_lines_log_and_stats(flat_folder, tmp_path):
    run = tmp_path / "run"
    # 4 steps of 16: tick 0 is one batch, tick 1 runs to 0.016 + 0.032 kimg, tick 2 ends with training.
    result = cli_train(flat_folder, run, "--kimg", "0.064", "--tick", "0.032", "--snap", "0.032")
    assert result.exit_code == 0, result.output
    ticks = [line for line in result.stdout.splitlines() if line.startswith("tick ")]
    assert len(ticks) == 3 and "\r" not in result.stdout  # no progress bar off a terminal
    assert ticks == [line for line in (run / "log.txt").read_text().splitlines() if line.startswith("tick ")]
    assert "snapshot network-snapshot-000000.pt at kimg 0.032" in result.stdout

    stats = records(run / "stats.jsonl")
    assert len(stats) == 3
    for record in stats:
        assert set(record) == KEYS
        for key, value in record.items():
            if key != "timestamp":
                assert set(value) == {"num", "mean", "std"} and all(math.isfinite(v) for v in value.values()), key
    assert means(stats, "Progress/tick") == [0, 1, 2]
    assert means(stats, "Progress/kimg") == [0.016, 0.048, 0.064]
    assert [r["Loss/G/loss"]["num"] for r in stats] == [16, 32, 16]          # one value per generated image
    assert [r["Loss/scores/fake"]["num"] for r in stats] == [32, 64, 32]     # D pass and G pass
    for record, line in zip(stats, ticks):
        signs = record["Loss/signs/real"]                                   # values +-1: std = sqrt(1 - mean^2)
        assert signs["std"] == pytest.approx(math.sqrt(1 - signs["mean"] ** 2), abs=1e-9)
        assert record["Loss/D/reg"]["mean"] == pytest.approx(5 * record["Loss/r1_penalty"]["mean"])  # gamma / 2
        assert record["Timing/sec_per_tick"]["mean"] > 0 and record["Resources/peak_cpu_mem_gb"]["mean"] > 0
        assert f"G {record['Loss/G/loss']['mean']:.4f}" in line and f"D {record['Loss/D/loss']['mean']:.4f}" in line
        assert f"tick {int(record['Progress/tick']['mean'])} " in line and "cpumem" in line and "w_avg" in line
    tick_kimg = np.diff([0] + means(stats, "Progress/kimg"))
    np.testing.assert_allclose(means(stats, "Timing/sec_per_kimg"), np.array(means(stats, "Timing/sec_per_tick")) / tick_kimg)
    assert means(stats, "Timing/total_sec") == sorted(means(stats, "Timing/total_sec"))
    assert [r["timestamp"] for r in stats] == sorted(r["timestamp"] for r in stats)


def test_resumed_run_continues_the_same_files(flat_folder, tmp_path, capsys):
    """A run that stopped after its kimg-0.032 snapshot but had logged two more ticks and half a line: resuming
    drops those records and writes ticks 2 and 3 again, with the numbers of the uninterrupted run."""
    run = tmp_path / "run"
    opts = TrainingOptions(kimg=0.064, snap_kimg=0.032, tick_kimg=0.016, **TINY)  # a tick per step, 4 steps

    def metric_line(path, G_ema, kimg):
        with open(run / "metric-mean.jsonl", "a") as f:
            f.write(json.dumps({"results": {"mean": kimg}, "snapshot_pkl": path.name}) + "\n")

    train(flat_folder, run, opts, progress=False, on_snapshot=metric_line)
    straight = records(run / "stats.jsonl")
    assert means(straight, "Progress/tick") == [0, 1, 2, 3]
    (run / "network-snapshot-000000_064.pt").unlink()  # as if it had stopped before the next snapshot
    text = (run / "stats.jsonl").read_text()
    (run / "stats.jsonl").write_text(text + text.splitlines()[-1][:40])  # half a line
    with open(run / "metric-mean.jsonl", "a") as f:
        f.write(json.dumps({"results": {"mean": 9}, "snapshot_pkl": "network-snapshot-000001.pt"}) + "\n")
    capsys.readouterr()

    train(flat_folder, run, opts, resume=True, progress=False, on_snapshot=metric_line)
    assert "resuming network-snapshot-000000.pt at kimg 0.032 (step 2)" in capsys.readouterr().out
    resumed = records(run / "stats.jsonl")
    assert means(resumed, "Progress/tick") == [0, 1, 2, 3]
    assert means(resumed, "Progress/kimg") == [0.016, 0.032, 0.048, 0.064]
    for a, b in zip(straight, resumed):  # training resumes bit for bit, so do its statistics
        assert {k: v for k, v in a.items() if k.startswith("Loss/")} == {k: v for k, v in b.items() if k.startswith("Loss/")}
    lines = records(run / "metric-mean.jsonl")  # one line per snapshot name: the dropped one's line went with it
    assert [(r["snapshot_pkl"], r["results"]["mean"]) for r in lines] == [
        ("network-snapshot-000000.pt", 0.032), ("network-snapshot-000000_064.pt", 0.064)]
    assert (run / "log.txt").read_text().count("training stylegan at 8x8") == 1


def test_divergence_stops_with_one_line_and_keeps_the_last_good_snapshot(flat_folder, tmp_path, monkeypatch):
    calls = {"n": 0}
    plain = stylegan1_step.generator_loss

    def poisoned(fake_logits):  # the 4th generator update (step 3) gets a NaN loss
        calls["n"] += 1
        return plain(fake_logits) * (math.nan if calls["n"] == 4 else 1.0)

    monkeypatch.setattr(stylegan1_step, "generator_loss", poisoned)
    run = tmp_path / "run"
    result = cli_train(flat_folder, run, "--kimg", "0.096", "--tick", "0.016", "--snap", "0.032", "--no-progress")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert errors[0].startswith("Error: training diverged in tick 3 (kimg 0.048 to 0.064): weights of G")
    assert errors[0].endswith("the last good snapshot is network-snapshot-000000.pt")
    snapshot = load_checkpoint(run / "network-snapshot-000000.pt")
    assert snapshot["step"] == 2 and all(torch.isfinite(v).all() for v in snapshot["G_ema"].values())
    stats = records(run / "stats.jsonl")
    assert means(stats, "Progress/tick") == [0, 1, 2]
    assert all(math.isfinite(r["Loss/G/loss"]["mean"]) for r in stats)
    assert (run / "log.txt").read_text().splitlines()[-1] == errors[0].removeprefix("Error: ")


def test_snapshot_hook_gets_g_ema_and_runs_without_flushed_denormals(flat_folder, tmp_path):
    trainer = Trainer(TrainingOptions(kimg=0.064, snap_kimg=0.032, **TINY), ImageDataset(flat_folder, resolution=8),
                      tmp_path / "run")
    calls = []

    def hook(path, G_ema, kimg):
        calls.append((path.name, kimg, G_ema is trainer.G_ema, (torch.tensor([1e-39]) * 1.0).item() != 0))
        return {"answer": 42.0}

    trainer.train(progress=False, on_snapshot=hook)
    assert calls == [("network-snapshot-000000.pt", 0.032, True, True),
                     ("network-snapshot-000000_064.pt", 0.064, True, True)]
    assert "metrics of network-snapshot-000000.pt: answer 42" in (tmp_path / "run" / "log.txt").read_text()


def test_snapshots_come_when_the_images_shown_pass_each_multiple_of_snap(flat_folder, tmp_path):
    # 100 images per snapshot with batch 32: after steps 4, 7, 10 (128, 224, 320 images), never before the multiple;
    # a step count rounded from 100 / 32 (every 3 steps: 96, 192, 288) would name a 1-kimg snapshot 000000.
    opts = TrainingOptions(kimg=0.32, snap_kimg=0.1, **dict(TINY, batch=32))
    trainer = Trainer(opts, ImageDataset(flat_folder, resolution=8), tmp_path / "run")
    seen = []
    trainer.train(progress=False, on_snapshot=lambda path, G_ema, kimg: seen.append(kimg))
    assert seen == [0.128, 0.224, 0.32]


def test_tensorboard_events_when_installed(flat_folder, tmp_path, monkeypatch):
    scalars = []

    class SummaryWriter:
        def __init__(self, log_dir):
            self.log_dir = log_dir

        def add_scalar(self, name, value, global_step=None, walltime=None):
            scalars.append((name, value, global_step))

        def flush(self):
            pass

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=SummaryWriter))
    opts = TrainingOptions(kimg=0.032, snap_kimg=0.032, tick_kimg=0.016, **TINY)
    train(flat_folder, tmp_path / "run", opts, progress=False, tensorboard=True, on_snapshot=lambda *_: {"fid": 3.5})
    stats = records(tmp_path / "run" / "stats.jsonl")
    assert [(v, s) for n, v, s in scalars if n == "Loss/G/loss"] == [(r["Loss/G/loss"]["mean"], 0) for r in stats]
    assert ("Metrics/fid", 3.5, 0) in scalars

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # not installed: a note, training goes on
    train(flat_folder, tmp_path / "run2", opts, progress=False, tensorboard=True)
    assert "tensorboard is not installed" in (tmp_path / "run2" / "log.txt").read_text()


def evaluate_or_skip():
    import stylegan_metrics

    try:
        return stylegan_metrics.evaluate
    except AttributeError:
        pytest.skip("stylegan_metrics.evaluate is not available")


def test_metrics_at_every_snapshot_in_nvidias_files(flat_folder, tmp_path, metrics_home):
    evaluate = evaluate_or_skip()
    run = tmp_path / "run"
    result = cli_train(flat_folder, run, "--kimg", "0.064", "--snap", "0.032", "--metrics", "fid100_full",
                       "--metrics-features", "toyfaces", "--device", "cpu")
    assert result.exit_code == 0, result.output
    lines = records(run / "metric-fid100_full.jsonl")
    assert len(lines) == 2  # one per snapshot
    assert all(set(line) >= NVIDIA_METRIC_KEYS for line in lines)
    assert [line["snapshot_pkl"] for line in lines] == ["network-snapshot-000000.pt", "network-snapshot-000000_064.pt"]
    assert lines[0]["results"]["fid100_full"] != lines[1]["results"]["fid100_full"]
    again = evaluate(load_generator(run / "network-snapshot-000000_064.pt"), ["fid100_full"], data=str(flat_folder),
                     features="toyfaces", device="cpu", progress=False)[0]
    assert lines[1]["results"]["fid100_full"] == again.results["fid100_full"]  # the snapshot's G_ema, as evaluated alone
    assert f"metrics of network-snapshot-000000_064.pt: fid100_full {again.results['fid100_full']:.6g}" in result.stdout


def test_unknown_metric_is_refused_before_training(flat_folder, tmp_path, metrics_home):
    evaluate_or_skip()
    result = cli_train(flat_folder, tmp_path / "run", "--kimg", "0.032", "--metrics", "fid50k_full,bogus")
    assert result.exit_code == 2 and "bogus" in result.stderr
    assert not (tmp_path / "run").exists()
