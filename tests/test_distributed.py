"""Sharded and resumable runs: two gloo processes equal one, a SIGKILLed run resumes to the uninterrupted result,
changed parameters refuse a stale state, a damaged chunk is recomputed."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from stylegan_core import InputError, save_checkpoint
from stylegan_metrics import linear_separability, ppl
from stylegan_metrics.engine.state import RunState
from stylegan_metrics_cli.launch import state_dir_for
from stylegan_metrics_cli.main import main
from helpers import Crash, CrashingColours, tiny_generator

JOB = Path(__file__).parent / "jobs" / "metrics_job.py"
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parent.parent))


def run_job(out: Path, *args: str, nproc: int = 1, **popen) -> subprocess.Popen:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] \
        if nproc > 1 else [sys.executable]
    return subprocess.Popen([*launcher, str(JOB), "--out", str(out), *args], env=ENV, **popen)


def finished(proc: subprocess.Popen, out: Path) -> dict:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out.read_text())


@pytest.mark.slow
def test_two_gloo_processes_equal_one(tmp_path):
    """48 samples in chunks of 8: rank 0 gets chunks 0, 2, 4 and rank 1 chunks 1, 3, 5. A third job joins a
    group of two and evaluates on rank 0 only with distributed=False: no collective call, so no deadlock."""
    one = run_job(tmp_path / "one.json", stderr=subprocess.PIPE, text=True)
    two = run_job(tmp_path / "two.json", nproc=2, stderr=subprocess.PIPE, text=True)
    alone = run_job(tmp_path / "alone.json", "--rank0-only", nproc=2, stderr=subprocess.PIPE, text=True)
    single, sharded = finished(one, tmp_path / "one.json"), finished(two, tmp_path / "two.json")
    assert finished(alone, tmp_path / "alone.json") == single
    assert sharded["fid"] == pytest.approx(single["fid"], rel=1e-9)
    assert sharded["ppl_distances"] == single["ppl_distances"]  # per-pair values, gathered in index order
    assert sharded["ppl"] == single["ppl"]
    assert sharded["ls"] == single["ls"] and 1.0 < single["ls"]["z"]


@pytest.mark.slow
def test_kept_reference_features_under_two_processes(tmp_path):
    """FID + KID against images: the reference runs once, sharded, and FID sums KID's kept features; a second run
    reads both caches on every rank (a rank that decided alone would wait forever for the other)."""
    def job(name: str, home: str, nproc: int) -> dict:
        env = dict(ENV, STYLEGAN_METRICS_HOME=str(tmp_path / home))
        proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run",
                                 "--standalone", f"--nproc-per-node={nproc}", str(JOB), "--out", str(tmp_path / name),
                                 "--metrics", "fid,kid"], env=env, stderr=subprocess.PIPE, text=True)
        return finished(proc, tmp_path / name)

    single = job("one.json", "home1", 1)
    sharded, cached = job("two.json", "home2", 2), job("again.json", "home2", 2)
    assert sharded["kid"] == pytest.approx(single["kid"], rel=1e-9) and sharded == cached
    assert sharded["fid"] == pytest.approx(single["fid"], rel=1e-9)
    assert len(list((tmp_path / "home2" / "stats").glob("noiseimages-features-*.npy"))) == 1


@pytest.mark.slow
def test_sigkilled_run_resumes_to_the_uninterrupted_result(tmp_path):
    state = tmp_path / "state"
    chunk = str(state / "fid48_full" / "chunk-{:06d}.npz")
    proc = run_job(tmp_path / "killed.json", "--metrics", "fid", "--state-dir", str(state), "--delay", "0.4")
    deadline = time.time() + 120
    while not Path(chunk.format(0)).exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert Path(chunk.format(0)).exists() and not Path(chunk.format(5)).exists(), "killed at the wrong time"

    resumed = finished(run_job(tmp_path / "resumed.json", "--metrics", "fid", "--state-dir", str(state),
                               stderr=subprocess.PIPE, text=True), tmp_path / "resumed.json")
    plain = finished(run_job(tmp_path / "plain.json", "--metrics", "fid", stderr=subprocess.PIPE, text=True),
                     tmp_path / "plain.json")
    assert resumed["fid"] == plain["fid"]  # bit-identical: chunks merge in the same order either way
    assert not (state / "fid48_full").exists()  # removed once the result is computed
    assert not (tmp_path / "killed.json").exists()


CALLS = {"n": 0, "fail_at": None}


def flaky_l2(a, b):
    """Squared L2 that raises on call CALLS['fail_at'] (a crash part way through a run)."""
    CALLS["n"] += 1
    if CALLS["fail_at"] is not None and CALLS["n"] >= CALLS["fail_at"]:
        raise Crash
    return (a - b).square().mean(dim=(1, 2, 3))


def ppl_run(state_dir, seed: int = 0):
    return ppl(tiny_generator(16), space="both", sampling="full", num_samples=40, batch_size=5, seed=seed, crop=False,
               similarity=flaky_l2, device="cpu", progress=False, chunk_size=8, state_dir=state_dir)


def crashed_ppl_state(tmp_path) -> Path:
    """A state folder left by a PPL run that crashed in its third chunk (chunks 0 and 1 saved in its `ppl40_nocrop` folder)."""
    state = tmp_path / "ppl-state"
    CALLS.update(n=0, fail_at=9)  # 4 calls per chunk of 8 pairs (2 batches x 2 spaces)
    with pytest.raises(Crash):
        ppl_run(state)
    CALLS.update(n=0, fail_at=None)
    assert sorted(p.name for p in (state / "ppl40_nocrop").glob("chunk-*.npz")) == ["chunk-000000.npz", "chunk-000001.npz"]
    return state


def test_ppl_resumes_from_saved_chunks(tmp_path):
    state = crashed_ppl_state(tmp_path)
    resumed = ppl_run(state)
    assert CALLS["n"] == 3 * 4  # chunks 2, 3, 4 only
    plain = ppl_run(None)
    np.testing.assert_array_equal(resumed.details["distance"], plain.details["distance"])
    assert resumed.results == plain.results and not state.exists()


def test_changed_parameters_refuse_the_stale_state(tmp_path):
    state = crashed_ppl_state(tmp_path)
    with pytest.raises(InputError, match=r"other parameters \(seed: 0 there, 1 now\).*--state-dir"):
        ppl_run(state, seed=1)
    assert (state / "ppl40_nocrop" / "chunk-000001.npz").exists()  # the stale state is left alone


def test_damaged_chunk_is_recomputed(tmp_path):
    state = crashed_ppl_state(tmp_path)
    damaged = state / "ppl40_nocrop" / "chunk-000001.npz"
    damaged.write_bytes(damaged.read_bytes()[:50])
    with pytest.warns(UserWarning, match="chunk-000001.npz is damaged"):
        resumed = ppl_run(state)
    assert CALLS["n"] == 4 * 4  # chunk 1 again, then 2, 3, 4
    np.testing.assert_array_equal(resumed.details["distance"], ppl_run(None).details["distance"])


def test_damaged_manifest_refuses_the_folder_as_it_is(tmp_path):
    """A manifest that is not ours may be a user's file: nothing in the folder is touched."""
    state = crashed_ppl_state(tmp_path)
    (state / "ppl40_nocrop" / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match=r"manifest.json is not a state manifest of this tool \(unreadable"):
        ppl_run(state)
    assert CALLS["n"] == 0 and (state / "ppl40_nocrop" / "chunk-000001.npz").exists()


def test_ls_resumes_from_saved_chunks(tmp_path):
    state, C = tmp_path / "ls-state", CrashingColours()
    run = lambda s: linear_separability(tiny_generator(16), C, num_samples=40, attributes=3, batch_size=5,  # noqa: E731
                                        device="cpu", progress=False, chunk_size=8, state_dir=s)
    C.fail_at = 6  # 2 calls per chunk: chunks 0 and 1 saved
    with pytest.raises(Crash):
        run(state)
    C.calls, C.fail_at = 0, None
    resumed = run(state)
    assert C.calls == 3 * 2
    assert resumed.results == run(None).results


def test_manifest_key_is_checked_field_by_field(tmp_path):
    RunState(tmp_path / "s", {"a": 1, "b": [1, 2]})
    RunState(tmp_path / "s", {"b": [1, 2], "a": 1})  # same parameters, any order
    with pytest.raises(InputError, match=r"\(b: \[1, 2\] there, \[1, 3\] now\)"):
        RunState(tmp_path / "s", {"a": 1, "b": [1, 3]})


@pytest.mark.slow
def test_cli_gpus_runs_cpu_processes_and_resumable_state(tmp_path, metrics_home):
    ckpt = save_checkpoint(tmp_path / "G.pt", G=tiny_generator(32), G_ema=tiny_generator(32))
    args = ["ppl", "--ckpt", str(ckpt), "--similarity", "toyfaces-lpips", "--num", "40", "--space", "both",
            "--device", "cpu", "--no-progress"]
    runner = CliRunner()
    r = runner.invoke(main, [*args, "--gpus", "2", "--out", str(tmp_path / "two.jsonl")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, [*args, "--out", str(tmp_path / "one.jsonl")])
    assert r.exit_code == 0, r.output
    two, one = (json.loads((tmp_path / f"{n}.jsonl").read_text()) for n in ("two", "one"))
    assert two["results"] == one["results"] and two["params"]["num_processes"] == 2
    assert not list(tmp_path.glob("two.ppl-*-state"))  # the default state folder, removed after success
    r = runner.invoke(main, [*args, "--gpus", "2", "--ckpt", str(tmp_path / "missing.pt")])
    assert r.exit_code == 2  # bad input met in the workers: exit 2
    r = runner.invoke(main, [*args, "--gpus", "2", "--device", "cuda:1"])
    assert r.exit_code == 2 and "CUDA_VISIBLE_DEVICES" in r.output


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["stylegan", "stylegan2"])
def test_two_process_training_keeps_the_ranks_identical(tmp_path, flat_folder, arch):
    """Each rank trains on half of every batch with its own latents; averaged gradients and statistics keep
    G, G_ema and D equal on both ranks, and only rank 0 writes the snapshot."""
    run = tmp_path / "run"
    proc = train_job(flat_folder, run, "--arch", arch)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((run / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0 == r1
    assert r0["step"] == 6 and r0["images_seen"] == 48 and r0["batch_rows"] == 4  # 8 per step, 4 per rank
    assert sorted(p.name for p in run.glob("network-snapshot-*.pt")) == ["network-snapshot-000000.pt"]
    if arch == "stylegan2":
        assert r0["pl_mean"] > 0
    else:  # resume where rank 1 cannot read the run folder (another node): rank 0 sends it the snapshot
        proc = train_job(flat_folder, run, "--arch", arch, "--resume", "--kimg", "0.096", "--hide-snapshots")
        assert proc.returncode == 0, proc.stderr[-3000:]
        r0, r1 = (json.loads((run / f"rank{r}.json").read_text()) for r in (0, 1))
        assert r0 == r1 and r0["step"] == 12 and "other random streams" not in proc.stderr


def train_job(data: Path, run: Path, *args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                           str(JOB.parent / "train_job.py"), "--data", str(data), "--out-dir", str(run), *args],
                          env=ENV, capture_output=True, text=True, timeout=300)


def test_state_folder_keeps_the_users_files(tmp_path):
    state = crashed_ppl_state(tmp_path)
    (state / "notes.txt").write_text("mine")
    ppl_run(state)
    assert sorted(p.name for p in state.iterdir()) == ["notes.txt"]


def test_cached_reference_leaves_no_stale_state(tmp_path, metrics_home):
    """A cache hit must not leave a manifest behind that a later run with other data would trip over."""
    from stylegan_metrics import fid
    from helpers import write_disc_images

    G, state = tiny_generator(16), tmp_path / "fid-state"

    class Means(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.adaptive_avg_pool2d(x.float() / 255, 2).flatten(1)

    kwargs = dict(num_gen=16, features=Means(), device="cpu", progress=False, state_dir=state)
    for folder in (write_disc_images(tmp_path / "a", 8, size=16), tmp_path / "a", write_disc_images(tmp_path / "b", 9, size=16)):
        assert np.isfinite(fid(G, folder, **kwargs).value)
        assert not state.exists()


def test_default_state_folder_is_keyed_by_the_options(tmp_path):
    """Two evaluations appending to one results file get two folders; batch size, device and process count
    do not change a result, so a rerun that changes only them resumes the same folder."""
    ckpt = tmp_path / "G.pt"
    ckpt.write_bytes(b"")
    command = click.Command("ppl")

    def folder(**params):
        with click.Context(command) as ctx:
            ctx.params = {"ckpt": str(ckpt), "seed": 0, "batch": 16, "device": None, "gpus": 1, **params}
            return state_dir_for(None, str(tmp_path / "runs.jsonl"), "ppl")

    assert re.fullmatch(r"runs\.ppl-[0-9a-f]{8}-state", folder().name) and folder().parent == tmp_path
    assert folder() == folder(batch=64, device="cpu", gpus=2, no_progress=True)
    assert folder() == folder(ckpt=os.path.relpath(ckpt))  # one file named two ways
    assert folder(seed=1) != folder() != folder(ckpt=str(tmp_path / "other.pt"))
    with click.Context(command):
        assert state_dir_for("mine", str(tmp_path / "runs.jsonl"), "ppl") == Path("mine")
        assert state_dir_for(None, None, "ppl") is None
