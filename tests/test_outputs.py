"""Outputs: `--out` appends only to results files, concurrent appends lose no line, any failed append names the
file and every value, `--gpus N` workers end with a SIGKILLed launcher, `ls --details` is checked first and never
lost, and a state folder keeps the files this tool did not write."""

import errno
import hashlib
import json
import math
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from stylegan_core import save_checkpoint
from stylegan_core.errors import OutputError
from stylegan_core.files import append_atomically
from stylegan_metrics import evaluate
from stylegan_metrics.engine.state import RunState
from stylegan_metrics.networks.toyfaces_nets import CLASSIFIER_FILE, bundled_path
from stylegan_metrics.result import MetricResult, results_file_problem
from helpers import alive, invoke, mean_squared_l2, one_line_error, tiny_generator, workers_inside_the_run

ENV = dict(os.environ, OMP_NUM_THREADS="1", STYLEGAN_METRICS_OFFLINE="1")
NVIDIA_LINE = ('{"results": {"fid50k_full": 2.8413}, "metric": "fid50k_full", "total_time": 3605.4, "total_time_str": '
               '"1h 00m 05s", "num_gpus": 8, "snapshot_pkl": "network-snapshot-025000.pkl", "timestamp": 1610.1}\n')
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def ckpt(tmp_path):
    G = tiny_generator(32, seed=3)
    return save_checkpoint(tmp_path / "G.pt", G=G, G_ema=G)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- which files take result lines --------------------------------------------------------------------------------
@pytest.mark.parametrize("content,problem", [
    (None, None),                                                   # a new file
    (b"", None),
    (b"\n\n", None),
    (NVIDIA_LINE.encode() * 2, None),                               # NVIDIA's metric-*.jsonl
    (NVIDIA_LINE.encode() + b'{"results": {"fid50k_full": 2.8', None),  # a last line cut short by a kill
    (b'{"labels": [["img0.png", 3]]}\n', 'line 1 is not a result line'),  # dataset.json on one line
    (b'{\n  "labels": null\n}\n', "line 1 is not a JSON object"),  # dataset.json, indented
    (NVIDIA_LINE.encode() + b'{"tick": 1, "kimg": 4.0}\n', "line 2 is not a result line"),  # a stats.jsonl line
    (b'{"results": [1]}\n', "line 1 is not a result line"),
    (b"PK\x03\x04" + bytes(range(256)) * 4, "line 1 is not a JSON object"),  # a zip, a checkpoint
    (b'{"results": {"fid": 1}}', None),                           # a whole last line without its newline
    (b'{"tick": 1, "kimg": 4', "line 1 is not a JSON object"),      # cut short, but not a result line
])
def test_results_file_rule(tmp_path, content, problem):
    path = tmp_path / "x.any"  # the name's suffix decides nothing
    if content is not None:
        path.write_bytes(content)
    found = results_file_problem(path)
    assert (found is None) if problem is None else (problem in found), found


def test_overlong_line_is_refused_without_reading_it_all(tmp_path, monkeypatch):
    monkeypatch.setattr("stylegan_metrics.result.MAX_LINE_BYTES", 1024)
    path = tmp_path / "big.jsonl"
    path.write_bytes(b'{"results": {"a": "' + b"x" * 4000 + b'"}}\n')
    assert "line 1 is longer than" in results_file_problem(path)


@pytest.mark.parametrize("name", ["dataset.json", "G.pt", "data.zip", "stats.jsonl"])
def test_out_refuses_a_file_that_is_not_results_before_any_work(tmp_path, ckpt, name, metrics_home):
    path = tmp_path / name
    if name == "G.pt":
        path = ckpt
    elif name == "data.zip":
        import zipfile
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("img0.png", b"\x89PNG" + bytes(100))
    elif name == "dataset.json":
        path.write_text(json.dumps({"labels": [["img0.png", 1]]}, indent=2))
    else:
        path.write_text('{"tick": 1, "kimg": 4.0}\n')
    before = digest(path)
    r = invoke("fid", "--ckpt", ckpt, "--data", tmp_path / "missing.npz", "--out", path, "--num", "8",
               "--device", "cpu", "--no-progress")
    one_line_error(r, f"{path} is not a results file", "nothing was written", last_line=True)
    assert "no such statistics file" not in r.output  # refused before the reference is read
    assert digest(path) == before

    G, calls = tiny_generator(16), []
    G.synthesis.register_forward_hook(lambda *args: calls.append(1))
    with pytest.raises(OutputError, match="is not a results file"):
        evaluate(G, ["ppl8_wend"], similarity=mean_squared_l2, device="cpu", progress=False, out=path)
    with pytest.raises(OutputError, match="is not a results file"):
        MetricResult("fid", {"fid": 1.0}).to_jsonl(path)
    assert calls == [] and digest(path) == before


def test_result_lines_go_to_new_empty_nvidia_and_device_files(tmp_path):
    nvidia = tmp_path / "metric-fid50k_full.jsonl"
    nvidia.write_text(NVIDIA_LINE)
    result = MetricResult("fid50k_full", {"fid50k_full": 3.25})
    for path in (nvidia, tmp_path / "new" / "runs.txt", Path(os.devnull)):
        result.to_jsonl(path)
    lines = nvidia.read_text().splitlines()
    assert lines[0] == NVIDIA_LINE.strip() and json.loads(lines[1])["results"] == {"fid50k_full": 3.25}
    assert json.loads((tmp_path / "new" / "runs.txt").read_text())["metric"] == "fid50k_full"


# ---- non-finite values and failed appends -------------------------------------------------------------------------
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, np.float32("inf")])
def test_non_finite_values_are_never_written_as_non_standard_json(tmp_path, value):
    path = tmp_path / "runs.jsonl"
    with pytest.raises(OutputError, match=r"fid = (inf|-inf|nan) is not a finite number.*no Infinity or NaN"):
        MetricResult("fid50k", {"fid": value}).to_jsonl(path)
    assert not path.exists()
    with pytest.raises(OutputError, match="a parameter is not a finite number"):
        MetricResult("fid50k", {"fid": 1.0}, params={"psi": math.nan}).to_json_line()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EINVAL, errno.EIO, errno.EDQUOT])
def test_any_failed_append_names_the_file_and_leaves_it(tmp_path, monkeypatch, code):
    path = tmp_path / "runs.jsonl"
    path.write_text(NVIDIA_LINE)

    def refuse(fd, data):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "write", refuse)
    with pytest.raises(OutputError, match=f"cannot write {re.escape(str(path))}: {re.escape(os.strerror(code))}"):
        MetricResult("fid", {"fid": 1.0}).to_jsonl(path)
    monkeypatch.undo()
    assert path.read_text() == NVIDIA_LINE


def test_dev_full_says_the_file_and_every_value(tmp_path, ckpt):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    r = invoke("ppl", "--ckpt", ckpt, "--similarity", "toyfaces-lpips", "--num", "8", "--device", "cpu",
               "--out", "/dev/full", "--state-dir", tmp_path / "state", "--no-progress")
    one_line_error(r, "cannot write /dev/full: No space left on device", "the results were ppl8_wend = ",
                   f"the saved chunks in {tmp_path / 'state'} are kept", last_line=True)
    said = re.search(r"ppl8_wend = ([^;]+);", r.output).group(1)
    assert float(said) > 0 and repr(float(said)) == said  # every digit: it reads back as the same float
    r = invoke("ppl", "--ckpt", ckpt, "--similarity", "toyfaces-lpips", "--num", "8", "--device", "cpu",
               "--out", "/dev/full", "--no-progress")
    one_line_error(r, "cannot write /dev/full: No space left on device", f"ppl8_wend = {said}; nothing was appended",
                   last_line=True)
    assert not list(Path("/dev").glob("full.*-state"))  # no default state folder beside a device


# ---- several processes appending to one file ----------------------------------------------------------------------
def _append_lines(path: str, writer: int, count: int, failing: bool, done) -> None:
    """Append `count` lines; when `failing`, every second append writes half its bytes, waits (others would
    append meanwhile) and then fails as on a full disk. Reports the lines it was told were written."""
    if failing:
        real_write, calls = os.write, {"n": 0}

        def half_then_full(fd, data):
            calls["n"] += 1
            if calls["n"] % 2 == 0:
                real_write(fd, bytes(data[: len(data) // 2]))
                time.sleep(0.02)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        os.write = half_then_full
    written = []
    for i in range(count):
        line = json.dumps({"results": {"w": writer, "i": i}, "pad": "p" * 200}) + "\n"
        try:
            append_atomically(path, line.encode())
            written.append(line)
        except OutputError:
            pass
    done.put((writer, written))


def test_concurrent_appends_keep_every_line_reported_written(tmp_path):
    path = tmp_path / "runs.jsonl"
    ctx = multiprocessing.get_context("fork")
    done = ctx.Queue()
    procs = [ctx.Process(target=_append_lines, args=(str(path), w, 12, w in (0, 3), done)) for w in range(8)]
    for p in procs:
        p.start()
    reported = dict(done.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    lines = path.read_text().splitlines(keepends=True)
    assert all(json.loads(line)["results"] for line in lines)  # every line whole
    expected = sorted(line for written in reported.values() for line in written)
    assert sorted(lines) == expected
    assert len(reported[0]) == 6 and len(reported[1]) == 12  # the failing writer lost only its own lines


def test_append_waits_for_the_lock_and_gives_up_with_one_line(tmp_path, monkeypatch):
    import fcntl
    path = tmp_path / "runs.jsonl"
    path.write_text(NVIDIA_LINE)
    monkeypatch.setattr("stylegan_core.files.LOCK_TIMEOUT_SECONDS", 0.2)
    with open(path, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(OutputError, match="another process has held its lock for 0.2 s"):
            MetricResult("fid", {"fid": 1.0}).to_jsonl(path)
    assert path.read_text() == NVIDIA_LINE


# ---- ls --details ---------------------------------------------------------------------------------------------------
def ls_args(ckpt, *more):
    return ["ls", "--ckpt", ckpt, "--classifier", bundled_path(CLASSIFIER_FILE), "--num", "40", "--attributes", "3",
            "--space", "z", "--svm", "torch", "--device", "cpu", "--no-progress", *more]


def test_ls_details_is_checked_before_the_work(tmp_path, ckpt):
    blocker = tmp_path / "ro"
    blocker.write_text("a file where a folder should be")
    one_line_error(invoke(*ls_args(ckpt, "--details", blocker / "table.csv")),
                   f"cannot write {blocker / 'table.csv'}", "is not a folder", last_line=True)
    dataset = tmp_path / "dataset.json"
    dataset.write_text('{"labels": null}')
    one_line_error(invoke(*ls_args(ckpt, "--details", dataset)), "must end in .csv", last_line=True)
    assert dataset.read_text() == '{"labels": null}'


def test_ls_details_that_fail_at_the_end_are_printed(tmp_path, ckpt, monkeypatch):
    out = tmp_path / "runs.jsonl"

    def full(path):
        raise OutputError(f"cannot write {path}: No space left on device")

    monkeypatch.setattr("stylegan_metrics_cli.ls.atomic_write", full)
    r = invoke(*ls_args(ckpt, "--details", tmp_path / "table.csv", "--out", out))
    one_line_error(r, "No space left on device", "the per-attribute table is printed above as CSV",
                   f"the result line was appended to {out}", last_line=True)
    assert "attribute,entropy_bits,svm_accuracy" in r.output and json.loads(out.read_text())["metric"] == "ls40"


# ---- state folders --------------------------------------------------------------------------------------------------
def test_state_removal_keeps_files_it_did_not_write(tmp_path):
    folder = tmp_path / "state"
    state = RunState(folder, {"n": 1})
    state.save(0, {"x": np.arange(3.0)})
    np.savez(folder / "chunk-000099.npz", weights=np.arange(3))  # the user's
    other = RunState(tmp_path / "other", {"n": 2})
    other.save(0, {"x": np.arange(3.0)})
    (folder / "chunk-000098.npz").write_bytes((tmp_path / "other" / "chunk-000000.npz").read_bytes())  # another run's
    (folder / ".chunk-000001.npz.0123456789ab.tmp").write_bytes(b"half")  # left by a kill -9
    with pytest.warns(UserWarning, match=r"state is kept: it holds 2 file\(s\) this tool did not write "
                                         r"\(chunk-000098.npz, chunk-000099.npz\)"):
        state.remove()
    assert sorted(p.name for p in folder.iterdir()) == ["chunk-000098.npz", "chunk-000099.npz"]
    assert np.load(folder / "chunk-000099.npz")["weights"].tolist() == [0, 1, 2]
    other.remove()
    assert not (tmp_path / "other").exists()


# ---- --gpus N: workers end with their launcher --------------------------------------------------------------------
@pytest.mark.slow
def test_workers_end_when_the_launcher_is_sigkilled(tmp_path, ckpt, metrics_home):
    if not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        pytest.skip("needs /proc/PID/task/PID/children")
    out, state = tmp_path / "runs.jsonl", tmp_path / "state"
    launcher = subprocess.Popen([sys.executable, "-m", "stylegan_metrics_cli", "ppl", "--ckpt", str(ckpt),
                                 "--similarity", "toyfaces-lpips", "--num", "400", "--chunk-size", "8",
                                 "--device", "cpu", "--gpus", "2", "--out", str(out), "--state-dir", str(state),
                                 "--no-progress"],
                                env=dict(ENV, STYLEGAN_METRICS_HOME=str(metrics_home)), stderr=subprocess.DEVNULL)
    workers, manifest = [], state / "ppl400_wend" / "manifest.json"
    try:
        workers = workers_inside_the_run(launcher, manifest)
        assert len(workers) == 2 and all(map(alive, workers))
        launcher.kill()
        launcher.wait()
        deadline = time.time() + 10
        while any(map(alive, workers)) and time.time() < deadline:
            time.sleep(0.05)
        assert not any(map(alive, workers))
        assert not out.exists() and manifest.exists()  # nothing appended; the state stays for a rerun
    finally:
        for pid in [launcher.pid, *workers]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_worker_ends_when_its_launcher_pipe_closes():
    """The pipe alone (the parent stays alive, so no parent-death signal): end-of-file ends the worker."""
    script = ("import os, sys, time\nfrom stylegan_metrics_cli.launch import LAUNCHER_PIPE, die_with_launcher\n"
              "r, w = os.pipe()\nos.environ[LAUNCHER_PIPE] = str(r)\ndie_with_launcher()\n"
              "assert LAUNCHER_PIPE not in os.environ\nos.close(w)\ntime.sleep(30)\nsys.exit(3)\n")
    start = time.time()
    proc = subprocess.run([sys.executable, "-c", script], env=dict(ENV, PYTHONPATH=str(Path(__file__).parent.parent)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert time.time() - start < 20
