"""`stylegan-metrics demo --quick`: offline, every file written, every value finite, the reference cached."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from stylegan_metrics_cli.main import main

FIGURES = ["samples.png", "style-mixing.png", "truncation.png", "ppl-histograms.png", "ls-entropy.png"]
METRICS = ["fid1k_full", "kid1k_full", "is1k_mean", "is1k_std", "ppl400_zfull", "ppl400_zend", "ppl400_wfull",
           "ppl400_wend", "ls2k_z", "ls2k_w"]
LINES = ["fid1k_full", "kid1k_full", "is1k", "ppl400_zfull", "ppl400_zend", "ppl400_wfull", "ppl400_wend", "ls2k"]


@pytest.mark.slow
def test_demo_quick(tmp_path, metrics_home):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--quick", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if line.startswith("warning: ls2k: the classifier gives one class")]
    assert len(warned) == 1 and "MetricWarning" not in result.output  # one line, not Python's two-line warning
    for name in FIGURES:
        image = np.asarray(Image.open(out / name).convert("RGB"))
        assert image.shape[0] > 50 and len(np.unique(image.reshape(-1, 3), axis=0)) > 20, name

    table = pd.read_csv(out / "report.csv")
    assert table.metric.tolist() == METRICS
    assert np.isfinite(table.value).all() and (table.value >= 0).all()
    assert pd.read_json(out / "report.json").metric.tolist() == table.metric.tolist()
    markdown = (out / "report.md").read_text()
    assert all(f"`{m}`" in markdown for m in table.metric)

    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["metric"] for line in lines] == LINES
    values = {k: v for line in lines for k, v in line["results"].items()}
    assert values == pytest.approx(dict(zip(table.metric, table.value)))
    assert all(math.isfinite(v) for v in values.values())

    ppl = pd.read_csv(out / "ppl-distances.csv")
    assert len(ppl) == 4 * 400 and np.isfinite(ppl.distance).all()
    ls = pd.read_csv(out / "ls-attributes.csv")
    assert len(ls) == 2 * 40 and ls.entropy_bits.between(0, 1).all()
    assert values["ls2k_z"] == pytest.approx(2 ** ls[ls.space == "z"].entropy_bits.sum())
    assert 1 <= values["is1k_mean"] <= 6  # six hair states
    assert table.samples[table.metric == "kid1k_full"].item() == "1000 generated vs 1000 real"
    assert table.samples[table.metric == "is1k_mean"].item() == "1000 generated"

    cached = list((metrics_home / "stats").glob("toyfaces-*.npz"))
    assert len(cached) == 1  # the reference statistics of rendered toyfaces, reused by the next run
    assert len(list((metrics_home / "stats").glob("toyfaces-features-*.npy"))) == 1  # KID's reference features
