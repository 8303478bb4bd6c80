"""EQ-T / EQ-R as registered metrics: per-group transforms from (seed, group), the same PSNR for any batch size and
chunking, equal to the formulas applied by hand, and `evaluate` of FID and equivariance on a StyleGAN3 pickle."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from stylegan_core import load_generator, save_checkpoint
from stylegan_metrics import evaluate
from stylegan_metrics.engine.sampling import BLOCK, STREAMS, latents, map_latents, table_rows
from stylegan_metrics.formulas.equivariance import psnr_from_sums
from stylegan_metrics.metrics.equivariance import GROUP, equivariance_batch, transform_params
from stylegan_metrics_cli.main import main
from helpers import tiny_generator, write_disc_images

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def G():
    return load_generator(FIXTURES / "nvidia_stylegan3_r.pkl")


def by_hand(G, kind: str, num: int, seed: int) -> float:
    sse = mask = 0.0
    for first in range(0, num, GROUP):
        n = min(GROUP, num - first)
        u = table_rows(seed, STREAMS["eq_transform"], first // GROUP, 1,
                       lambda g: torch.rand(BLOCK, 2, generator=g))[0]  # [2]
        with torch.no_grad():
            ws = map_latents(G, latents(seed, first, n, G.z_dim))  # padded to 16 rows, as the engine maps
            s, m = equivariance_batch(G, ws, kind, transform_params(kind, u, G.img_resolution))
        sse, mask = sse + s.sum().item(), mask + m.sum().item()
    return psnr_from_sums(sse, mask)


@pytest.mark.parametrize("name,kind", [("eqt10_int", "eqt_int"), ("eqt10_frac", "eqt_frac"), ("eqr10", "eqr")])
def test_metric_equals_the_formulas_by_hand(G, name, kind):
    [r] = evaluate(G, [name], seed=3, batch_size=4, device="cpu", progress=False)
    assert r.value == pytest.approx(by_hand(G, kind, 10, seed=3), abs=1e-9)
    assert 30 < r.value < 150  # a tiny random StyleGAN3 is nearly equivariant, not exactly


def test_same_numbers_for_any_batch_size_and_chunking(G):
    a = evaluate(G, ["eqt14_int", "eqr14"], batch_size=4, device="cpu", progress=False)
    b = evaluate(G, ["eqt14_int", "eqr14"], batch_size=9, chunk_size=8, device="cpu", progress=False)
    assert [r.results for r in a] == [r.results for r in b]
    other_seed = evaluate(G, ["eqr14"], seed=1, device="cpu", progress=False)[0]
    assert other_seed.value != a[1].value


def test_fid_and_equivariance_of_a_stylegan3_pickle_from_the_cli(tmp_path, inception_weights, metrics_home):
    data = write_disc_images(tmp_path / "real", 8, size=16)
    out = tmp_path / "m.jsonl"
    r = CliRunner().invoke(main, ["evaluate", "--ckpt", str(FIXTURES / "nvidia_stylegan3_r.pkl"), "--data", str(data),
                                  "--metrics", "fid8_full,eqt8_int,eqr8", "--weights", str(inception_weights),
                                  "--device", "cpu", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["metric"] for line in lines] == ["fid8_full", "eqt8_int", "eqr8"]
    assert all(np.isfinite(v) for line in lines for v in line["results"].values())


def test_a_generator_without_input_transform_is_refused(tmp_path):
    ckpt = save_checkpoint(tmp_path / "G.pt", G=tiny_generator(16), G_ema=tiny_generator(16))
    r = CliRunner().invoke(main, ["evaluate", "--ckpt", str(ckpt), "--metrics", "eqt50k_int", "--device", "cpu"])
    assert r.exit_code == 2 and "G.synthesis.input.transform" in r.output
