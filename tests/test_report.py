"""Reports: our and NVIDIA's result lines merged into one table, every format round-tripped, plots, bad input."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from stylegan_core.errors import InputError
from stylegan_metrics import MetricResult, plot_results, read_results, write_report
from stylegan_metrics_cli.main import main

NVIDIA_LINE = {"results": {"fid50k_full": 2.84}, "metric": "fid50k_full", "total_time": 3105.2,
               "total_time_str": "51m 45s", "num_gpus": 8, "snapshot_pkl": "network-snapshot-025000.pkl",
               "timestamp": 1609766000.12}
COLUMNS = ["snapshot", "kimg", "fid50k", "ppl_wend", "num_gpus", "total_time", "timestamp",
           "params.fid50k.batch_size", "params.num_gen", "params.num_samples", "params.ppl_wend.batch_size",
           "params.seed", "params.space"]
# Snapshot 200 is written first; rows come out by kimg. 0.1 + 0.2 checks that every digit survives.
ROWS = [
    ["run/network-snapshot-000000.pt", 0.0, 40.125, 123.456789012345, 1, 2.25, 2000.0, 32, 50000, 1000, 16, 0, "w"],
    ["run/network-snapshot-000200.pt", 200.0, 7.25, 0.1 + 0.2, 1, 2.25, 2200.0, 32, 50000, 1000, 16, 0, "w"],
]


def write_run(path):
    """An FID line and a PPL line for each of two snapshots, as the CLI's --out appends them."""
    for kimg, fid, ppl in [(200, 7.25, 0.1 + 0.2), (0, 40.125, 123.456789012345)]:
        snapshot = f"run/network-snapshot-{kimg:06d}.pt"
        MetricResult("fid50k", {"fid50k": fid}, params=dict(num_gen=50000, batch_size=32, seed=0), total_time=10.5,
                     num_gpus=1, snapshot_pkl=snapshot, timestamp=1000.0 + kimg).to_jsonl(path)
        MetricResult("ppl_wend", {"ppl_wend": ppl}, params=dict(num_samples=1000, batch_size=16, seed=0, space="w"),
                     total_time=2.25, num_gpus=1, snapshot_pkl=snapshot, timestamp=2000.0 + kimg).to_jsonl(path)
    return path


@pytest.fixture
def frame(tmp_path):
    return read_results(write_run(tmp_path / "results.jsonl"))


def test_metrics_of_one_snapshot_merge_into_one_row(frame):
    assert list(frame.columns) == COLUMNS
    assert frame.astype(object).values.tolist() == ROWS       # later lines win: total_time, timestamp of PPL
    assert str(frame["num_gpus"].dtype) == "Int64" and frame["kimg"].dtype == np.float64


def test_later_line_wins_and_rows_follow_kimg_snapshot_then_appearance(tmp_path):
    path = tmp_path / "r.jsonl"
    for snapshot, value in [("b/G.pt", 1.0), (None, 2.0), ("run/network-snapshot-000010.pt", 3.0), ("a/G.pt", 4.0),
                            (None, 5.0), ("b/G.pt", 6.0)]:
        MetricResult("fid50k", {"fid50k": value}, snapshot_pkl=snapshot).to_jsonl(path)
    frame = read_results(path)
    assert frame["snapshot"].tolist()[:3] == ["run/network-snapshot-000010.pt", "a/G.pt", "b/G.pt"]
    assert frame["snapshot"].isna().tolist() == [False, False, False, True, True]
    assert frame["fid50k"].tolist() == [3.0, 4.0, 6.0, 2.0, 5.0]
    assert frame["kimg"].tolist()[0] == 10.0 and frame["kimg"].iloc[1:].isna().all()


def test_nvidia_metric_jsonl_and_directories(tmp_path):
    for run in ["00000-ffhq", "00001-ffhq"]:
        (tmp_path / "runs" / run).mkdir(parents=True)
        (tmp_path / "runs" / run / "metric-fid50k_full.jsonl").write_text(json.dumps(NVIDIA_LINE) + "\n")
        (tmp_path / "runs" / run / "stats.jsonl").write_text('{"Progress/tick": {"num": 1, "mean": 1.0}}\n')
    frame = read_results(tmp_path / "runs")
    assert list(frame.columns) == ["snapshot", "kimg", "fid50k_full", "num_gpus", "total_time", "timestamp"]
    # A bare pickle name lies beside its jsonl, so the two runs stay two rows.
    assert frame["snapshot"].tolist() == [str(tmp_path / "runs" / r / "network-snapshot-025000.pkl")
                                          for r in ["00000-ffhq", "00001-ffhq"]]
    assert frame.iloc[0, 1:].tolist() == [25000.0, 2.84, 8, 3105.2, 1609766000.12]


def test_directory_reads_every_jsonl_recursively(tmp_path):
    write_run(tmp_path / "d" / "a" / "fid.jsonl")
    (tmp_path / "d" / "b" / "c").mkdir(parents=True)
    (tmp_path / "d" / "b" / "c" / "nvidia.jsonl").write_text(json.dumps(NVIDIA_LINE) + "\n")
    (tmp_path / "d" / "notes.txt").write_text("not a result file")
    frame = read_results([tmp_path / "d"])
    assert frame["kimg"].tolist() == [0.0, 200.0, 25000.0]
    assert frame["fid50k"].tolist()[:2] == [40.125, 7.25] and frame["fid50k_full"].tolist()[2] == 2.84


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json", "html"])
def test_machine_readable_formats_round_trip_exactly(frame, tmp_path, fmt):
    out = tmp_path / f"report.{fmt}"
    assert write_report(frame, fmt, out) is None
    if fmt == "csv":
        back = pd.read_csv(out)
    elif fmt == "parquet":
        back = pd.read_parquet(out)
        pd.testing.assert_frame_equal(back, frame)
    elif fmt == "json":
        records = json.loads(out.read_text())
        assert records == [dict(zip(COLUMNS, row)) for row in ROWS]
        back = pd.DataFrame(records)
    else:
        back = pd.read_html(io.StringIO(out.read_text()))[0]
    assert list(back.columns) == COLUMNS
    assert back.astype(object).values.tolist() == ROWS


@pytest.mark.parametrize("fmt, digits", [("markdown", None), ("latex", None), ("markdown", 3)])
def test_text_formats_hold_headers_and_values_in_row_order(frame, fmt, digits):
    text = write_report(frame, fmt, digits=digits)
    header = text.splitlines()[0] if fmt == "markdown" else text.split("\\midrule")[0]
    names = [c.replace("_", "\\_") for c in COLUMNS] if fmt == "latex" else COLUMNS
    assert [n for n in names if n in header] == names
    values = ["40.125", "123.456789012345", "0.30000000000000004"] if digits is None else ["40.1", "123", "0.3"]
    for value in values:
        assert value in text
    assert text.index("network-snapshot-000000") < text.index("network-snapshot-000200")
    if digits:
        assert "123.45" not in text


def test_cli_writes_stdout_and_files(tmp_path):
    jsonl = write_run(tmp_path / "results.jsonl")
    result = CliRunner().invoke(main, ["report", str(jsonl), "--format", "csv"])
    assert result.exit_code == 0, result.output
    back = pd.read_csv(io.StringIO(result.stdout))
    assert back.astype(object).values.tolist() == ROWS
    out = tmp_path / "report.parquet"
    result = CliRunner().invoke(main, ["report", str(tmp_path), "--format", "parquet", "--out", str(out)])
    assert result.exit_code == 0 and result.stdout == ""
    assert pd.read_parquet(out).astype(object).values.tolist() == ROWS


def test_failed_write_keeps_previous_output(frame, tmp_path, monkeypatch):
    out = tmp_path / "report.parquet"
    out.write_bytes(b"previous report")

    def half_written(self, f, **kwargs):
        f.write(b"PAR1 partial")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_written)
    with pytest.raises(OSError, match="disk full"):
        write_report(frame, "parquet", out)
    assert out.read_bytes() == b"previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.parquet", "results.jsonl"]


def test_plot_draws_curves(frame, tmp_path):
    png = tmp_path / "curves.png"
    plot_results(frame, png)
    pixels = np.asarray(Image.open(png).convert("RGB"))
    assert png.stat().st_size > 0 and pixels.shape[0] > 100
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 2


def test_cli_plot_and_table_together(tmp_path):
    jsonl, png, md = write_run(tmp_path / "r.jsonl"), tmp_path / "p.png", tmp_path / "r.md"
    result = CliRunner().invoke(main, ["report", str(jsonl), "--out", str(md), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert Image.open(png).format == "PNG" and md.read_text().startswith("| snapshot")


def bad_cases(tmp_path):
    run = write_run(tmp_path / "ok.jsonl")
    lines = run.read_text().splitlines()
    (tmp_path / "bad.jsonl").write_text("\n".join([lines[0], "", '{"results": {"fid50k": 1.0}'] + lines[1:]) + "\n")
    (tmp_path / "list.jsonl").write_text('[1, 2]\n')
    (tmp_path / "text.jsonl").write_text('{"results": {"fid50k": "low"}}\n')
    (tmp_path / "empty").mkdir()
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps(NVIDIA_LINE) + "\n")
    return {
        "malformed": (["report", str(tmp_path / "bad.jsonl")], f"{tmp_path / 'bad.jsonl'}:3: not a JSON line"),
        "not_object": (["report", str(tmp_path / "list.jsonl")], f"{tmp_path / 'list.jsonl'}:1: not a metric result"),
        "not_number": (["report", str(tmp_path / "text.jsonl")], "result 'fid50k' is not a number"),
        "missing": (["report", str(tmp_path / "nope")], f"no such file or directory: {tmp_path / 'nope'}"),
        "empty_dir": (["report", str(tmp_path / "empty")], "no *.jsonl result files in directory"),
        "parquet_stdout": (["report", str(run), "--format", "parquet"], "--out FILE.parquet"),
        "plot_one": (["report", str(one), "--plot", str(tmp_path / "p.png")], "at least two snapshots"),
    }


@pytest.mark.parametrize("case", ["malformed", "not_object", "not_number", "missing", "empty_dir", "parquet_stdout",
                                  "plot_one"])
def test_bad_input_is_one_line_exit_2(tmp_path, case):
    args, message = bad_cases(tmp_path)[case]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr
    assert result.stdout.startswith("| snapshot") if case == "plot_one" else result.stdout == ""  # table, then plot
    assert not (tmp_path / "p.png").exists()


def test_api_errors_are_input_errors(tmp_path):
    (tmp_path / "blank.jsonl").write_text("\n\n")
    with pytest.raises(InputError, match="no result lines"):
        read_results(tmp_path / "blank.jsonl")
    with pytest.raises(InputError, match="unknown report format 'xlsx'"):
        write_report(pd.DataFrame({"a": [1]}), "xlsx")
