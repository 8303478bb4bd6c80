"""docs/architecture.md's example metrics, read from the page itself: registered, run by name through `evaluate`
beside FID, equal to the same numbers computed by hand, and the same under two gloo processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from stylegan_core.data.datasets import ImageDataset
from stylegan_metrics import evaluate, frechet_distance, register
from stylegan_metrics.engine.sampling import generate_batches
from stylegan_metrics.metrics import FAMILIES, METRICS
from helpers import CrashingQuadrants, architecture_example, tiny_generator, write_disc_images

JOB = Path(__file__).parent / "jobs" / "example_metrics_job.py"
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parent.parent))


@pytest.fixture
def example():
    families, metrics = list(FAMILIES), dict(METRICS)
    module = architecture_example()
    register(module.BRIGHTNESS)
    register(module.EDGE_FD)
    yield module
    FAMILIES[:], METRICS.clear()
    FAMILIES.extend(families)
    METRICS.update(metrics)


def moments(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    x = features.double().numpy()
    return x.mean(axis=0), np.cov(x, rowvar=False)  # N - 1


def test_the_example_metrics_run_by_name_and_equal_a_hand_computation(tmp_path, metrics_home, example):
    data = write_disc_images(tmp_path / "real", 20, size=16)
    G, inception_like = tiny_generator(16, seed=3), CrashingQuadrants()
    results = evaluate(G, ["brightness40", "edgefd40", "fid40_full"], data=data, features=inception_like,
                       batch_size=4, chunk_size=8, device="cpu", progress=False)
    assert [r.metric for r in results] == ["brightness40", "edgefd40", "fid40_full"]
    assert inception_like.calls == 5 + 10  # FID's own network: 20 reference images and 40 generated, 4 per call

    images = torch.cat([b.images for b in generate_batches(G, 40, batch_size=40, seed=0, device=torch.device("cpu"))])
    assert results[0].value == pytest.approx(images.double().mean().item(), rel=1e-12)
    real = torch.stack([ImageDataset(data, labels=False)[i][0] for i in range(20)])
    edges = example.EdgeFeatures()
    expected = frechet_distance(*moments(edges(images)), *moments(edges(real)))
    assert results[1].value == pytest.approx(expected, rel=1e-9) and expected > 0
    assert results[1].params["reference_n"] == 20


@pytest.mark.slow
def test_the_example_metrics_are_the_same_under_two_gloo_processes(tmp_path):
    """Written without a thought for ranks: the engine hands `finish` every rank's chunks (Brightness) or their sums
    (EdgeFD)."""
    data = write_disc_images(tmp_path / "real", 20, size=16)
    runs = {}
    for nproc in (1, 2):
        out = tmp_path / f"{nproc}.json"
        env = dict(ENV, STYLEGAN_METRICS_HOME=str(tmp_path / f"home{nproc}"))
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                               f"--nproc-per-node={nproc}", str(JOB), "--out", str(out), "--data", str(data)],
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        runs[nproc] = json.loads(out.read_text())
    one, two = runs[1], runs[2]
    assert (one["num_processes"], two["num_processes"]) == (1, 2)
    assert two["brightness40"] == one["brightness40"]  # every chunk, in chunk order: bit for bit
    assert two["edgefd40"] == pytest.approx(one["edgefd40"], rel=1e-9)  # float64 sums added in another order
