"""benchmarks/gpu.py in its tiny size on the CPU, and run_all.py's scaling rows, without the optional peers: they
run, and their tables parse."""

import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def markdown_tables(text: str) -> list[list[dict[str, str]]]:
    """Every markdown table of `text` as a list of {column: cell} rows."""
    tables, lines = [], [line.strip() for line in text.splitlines()]
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and set(lines[i + 1]) <= set("|-: "):
            header = [c.strip() for c in lines[i].strip("|").split("|")]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip("|").split("|")]
                assert len(cells) == len(header), lines[i]
                rows.append(dict(zip(header, cells)))
                i += 1
            tables.append(rows)
        else:
            i += 1
    return tables


def test_gpu_benchmark_tiny_on_the_cpu(tmp_path):
    env = dict(os.environ, STYLEGAN_METRICS_HOME=str(tmp_path), STYLEGAN_METRICS_OFFLINE="1")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu", "--tiny",
                           "--skip-peers", "--threads", "1"], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stages, fid, ppl = markdown_tables(proc.stdout)

    rates = {row["stage"]: float(row["images/s"]) for row in stages}
    assert all(rate > 0 and math.isfinite(rate) for rate in rates.values())
    assert all(float(row["images per CPU s"]) > 0 for row in stages)
    for name in ("latents (per-index table) to the device", "noise v1: per-sample CPU generators, copied",
                 "noise v2: counter-based, on the device", "G(z) alone, torch.randn noise on the device, fp32",
                 "G with our sampling (generate_batches), noise v2, fp32",
                 "G with our sampling, noise v1 (before), fp32",
                 "toyfaces fp32, 16 images per call"):
        assert name in rates, name
    assert stages[2]["ratio (images/s)"].endswith("x noise v1: per-sample CPU generators, copied")

    assert [(row["tool"], row["setting"]) for row in fid] == [("ours", "FID, fp32"),
                                                               ("ours", "FID+KID in one evaluation, fp32")]
    assert all(float(row["images/s"]) > 0 for row in fid)
    assert fid[0]["value"] == fid[1]["value"] and float(fid[0]["value"]) > 0  # the same 32 samples either way

    assert [row["tool"] for row in ppl] == ["ours, noise v2", "ours, noise v1 (before)"]
    assert all(float(row["pairs/s"]) > 0 for row in ppl)


def test_run_all_scaling_rows_on_the_cpu(tmp_path):
    """run_all.py with its helpers (measure.py, ppl_peers.py, run_all_notes.py): ours only, PPL and LS at two
    small sizes; every row runs in its own worker process and is finite and positive."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick", "--skip-peers",
                           "--only", "ppl,ls", "--scaling-sizes", "32", "64", "--threads", "1"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [scaling] = markdown_tables(proc.stdout)
    assert [(row["metric (toyfaces networks)"], row["N"]) for row in scaling] == [
        ("PPL", "32"), ("PPL", "64"), ("LS", "32"), ("LS", "64")]
    for row in scaling:
        assert float(row["wall s"]) > 0 and float(row["peak RSS MiB"]) > 0, row
