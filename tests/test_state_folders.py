"""State folders are named by metric: two metrics of one kind in one --state-dir both resume to the uninterrupted
numbers, one reference pass resumes each metric's part, and a folder an earlier version named by kind is found again."""

import json
import os

import pytest

from stylegan_metrics import evaluate
from stylegan_metrics.engine.state import RunState, adopt_earlier_folder
from helpers import Crash, CrashingQuadrants, quadrant_reference, tiny_generator, write_disc_images

pytestmark = pytest.mark.usefixtures("one_thread")
NAMES = ["fid16_full", "fid8_full"]
OPTIONS = dict(batch_size=4, chunk_size=4, device="cpu", progress=False)


def run(features, state=None, names=NAMES, data=None):
    data = quadrant_reference(features="CrashingQuadrants") if data is None else data
    return evaluate(tiny_generator(16), names, data=data, features=features, state_dir=state, **OPTIONS)


def chunks(folder):
    return sorted(p.name for p in folder.glob("chunk-*.npz"))


def test_two_fids_in_one_state_folder_both_resume_to_the_uninterrupted_numbers(tmp_path):
    plain = [r.value for r in run(CrashingQuadrants())]
    state, net = tmp_path / "state", CrashingQuadrants(fail_at=4)  # a call per chunk: 0..2 saved
    with pytest.raises(Crash):
        run(net, state)
    assert chunks(state / "fid16_full") == ["chunk-000000.npz", "chunk-000001.npz", "chunk-000002.npz"]
    assert chunks(state / "fid8_full") == ["chunk-000000.npz", "chunk-000001.npz"]  # all it reads
    net.calls, net.fail_at = 0, None
    resumed = run(net, state)
    assert [r.value for r in resumed] == plain  # bit-identical: the same chunks merged in the same order
    assert net.calls == 1  # chunk 3 only: fid8_full had every chunk, fid16_full all but one
    assert not state.exists()  # every folder removed once the results are computed


def test_a_rerun_of_both_after_a_finished_run_gives_the_same_numbers(tmp_path):
    first = [r.value for r in run(CrashingQuadrants(), tmp_path / "state")]
    again = [r.value for r in run(CrashingQuadrants(), tmp_path / "state")]
    assert first == again == [r.value for r in run(CrashingQuadrants())]


def test_one_reference_pass_serves_both_and_each_part_resumes(tmp_path, metrics_home):
    """fid8 (the first 8 images) and fid8_full (all 12) read one pass over the reference, each image through the
    network once for both; a crash leaves each metric's part in its own folder, and the rerun resumes both."""
    data = write_disc_images(tmp_path / "real", 12, size=16)
    net = CrashingQuadrants()
    plain = [r.value for r in run(net, None, ["fid8", "fid8_full"], data=data)]
    assert net.calls == 3 + 2  # 3 reference chunks of 4 images (one call each, for both), 2 generated chunks
    for path in metrics_home.rglob("*"):  # computed again below
        if path.is_file():
            path.unlink()
    state, net = tmp_path / "state", CrashingQuadrants(fail_at=3)  # reference chunks 0 and 1 saved
    with pytest.raises(Crash):
        run(net, state, ["fid8", "fid8_full"], data=data)
    assert chunks(state / "fid8-reference") == chunks(state / "fid8_full-reference") == ["chunk-000000.npz",
                                                                                          "chunk-000001.npz"]
    net.calls, net.fail_at = 0, None
    assert [r.value for r in run(net, state, ["fid8", "fid8_full"], data=data)] == plain
    assert net.calls == 1 + 2  # the last reference chunk (fid8_full's), then the 2 chunks of generated images
    assert not state.exists()


def earlier_state(tmp_path, name: str) -> os.PathLike:
    """The state an earlier version left: a crashed run's folder renamed to the kind's name, as it wrote it."""
    state, net = tmp_path / "state", CrashingQuadrants(fail_at=2)  # chunk 0 saved
    with pytest.raises(Crash):
        run(net, state, [name])
    (state / name).rename(state / "fid")
    return state


def test_a_folder_of_an_earlier_version_with_this_run_in_it_is_resumed(tmp_path):
    plain = run(CrashingQuadrants(), names=["fid16_full"])[0].value
    state = earlier_state(tmp_path, "fid16_full")
    net = CrashingQuadrants()
    assert run(net, state, ["fid16_full"])[0].value == plain
    assert net.calls == 3  # chunk 0 was found in state/fid
    assert not state.exists()


def test_a_folder_of_an_earlier_version_with_another_run_is_left_alone(tmp_path):
    state = earlier_state(tmp_path, "fid8_full")
    before = {p.name: p.read_bytes() for p in (state / "fid").iterdir()}
    net = CrashingQuadrants()
    run(net, state, ["fid16_full"])
    assert net.calls == 4  # nothing of fid8_full's run is used
    assert {p.name: p.read_bytes() for p in (state / "fid").iterdir()} == before
    assert sorted(p.name for p in state.iterdir()) == ["fid"]  # this run's folder went; the other run's stays


@pytest.mark.parametrize("setup,adopted", [
    ("same", True),
    ("other key", False),
    ("not a kind's name", False),
    ("target exists", False),
    ("manifest unreadable", False),
])
def test_adopt_earlier_folder_takes_only_exactly_this_runs_folder(tmp_path, setup, adopted):
    key = RunState(tmp_path / "probe", {"metric": "fid", "num": 8}).key
    (tmp_path / "probe" / "manifest.json").unlink()
    (tmp_path / "probe").rmdir()
    earlier = tmp_path / ("kid" if setup != "not a kind's name" else "fid_old")
    earlier.mkdir()
    stored = dict(key, num=16) if setup == "other key" else key
    (earlier / "manifest.json").write_text("{not json" if setup == "manifest unreadable" else json.dumps(stored))
    if setup == "target exists":
        (tmp_path / "fid8_full").mkdir()
    result = adopt_earlier_folder(tmp_path / "fid8_full", key)
    assert (result is not None) == adopted
    assert earlier.exists() != adopted
