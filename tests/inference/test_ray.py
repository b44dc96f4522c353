"""Past one machine, on a real local Ray cluster (`ray.init(num_cpus=2)`, one per module, shut down at the end):

- `predict --ray` writes the rows `predict` writes (to 1e-5), lists the same bad files, and resumes an interrupted
  output without duplicates; with --segments too.
- `gemo-clap serve`'s application on Ray Serve, queried over loopback HTTP: good clips (raw and base64 JSON), a long
  clip with segments, bad bodies (empty, random bytes, a 0.01 s clip, too large, malformed JSON, a wrong content
  type), then 4 concurrent clients x 25 requests: every answer right or a clear 4xx, none hangs, the server stays up.

The expected scores come from `predict_files` / `predict_segments` in this process, on the same files.
"""

from __future__ import annotations

import base64
import io
import json
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gemo_clap_hf.cli.main import main
from gemo_clap_hf.inference.engine import predict_files, predict_segments
from gemo_clap_hf.inference.segments import SegmentOptions
from tests.helpers.tiny_models import random_clip
from tests.inference.test_predict_bulk import audio_folder, good_files, ml_group_checkpoint, read_csv  # noqa: F401 - fixtures
from tests.inference.test_serving_parts import assert_answer

ray = pytest.importorskip("ray", reason="the [ray] extra (ray[data,serve]) is not installed")
serve = pytest.importorskip("ray.serve", reason="the [ray] extra (ray[data,serve]) is not installed")
requests = pytest.importorskip("requests")

pytestmark = pytest.mark.slow
LABELS = ("neutral", "happy", "sad", "angry", "gender_score")
MAX_BYTES = 400_000


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    serve.shutdown()
    ray.shutdown()


def predict(*argv) -> int:
    return main(["predict", *map(str, argv), "--quiet"])


def assert_same_rows(ours: list[dict], theirs: list[dict], key=lambda row: row["file"]) -> None:
    assert sorted(map(key, ours)) == sorted(map(key, theirs))
    by_key = {key(row): row for row in theirs}
    for row in ours:
        want = by_key[key(row)]
        assert row["emotion"] == want["emotion"] and row["gender"] == want["gender"]
        np.testing.assert_allclose([float(row[k]) for k in LABELS], [float(want[k]) for k in LABELS], atol=1e-5)


@pytest.fixture(scope="module")
def outputs(cluster, ml_group_checkpoint, audio_folder, tmp_path_factory):  # noqa: F811
    folder = tmp_path_factory.mktemp("ray_outputs")
    plain, on_ray = folder / "plain.csv", folder / "ray.csv"
    assert predict("--model", ml_group_checkpoint, audio_folder, "-r", "-o", plain) == 0
    assert predict("--model", ml_group_checkpoint, audio_folder, "-r", "-o", on_ray, "--batch-size", "3", "--ray") == 0
    return plain, on_ray


def test_predict_on_ray_writes_predicts_rows(outputs, audio_folder, capsys):  # noqa: F811
    plain, on_ray = outputs
    ours, theirs = read_csv(on_ray), read_csv(plain)
    assert on_ray.read_text().splitlines()[0] == plain.read_text().splitlines()[0]  # same columns
    assert len(ours) == len(good_files(audio_folder)) + 1  # sub/h.wav too
    assert_same_rows(ours, theirs)


def test_predict_on_ray_lists_the_bad_files(cluster, ml_group_checkpoint, audio_folder, capsys):  # noqa: F811
    code = predict("--model", ml_group_checkpoint, audio_folder / "corrupt.wav", audio_folder / "a.wav",
                   audio_folder / "empty.wav", "--ray", "--json")  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0 and [row["file"] for row in json.loads(out)] == [str(audio_folder / "a.wav")]
    assert "classified 1 of 3 file(s), 2 failed" in err
    for name, reason in (("corrupt.wav", "cannot be read"), ("empty.wav", "holds no samples")):
        assert f"skipped {audio_folder / name}: audio file '{audio_folder / name}' {reason}" in err


def test_predict_on_ray_resumes_without_duplicates(outputs, ml_group_checkpoint, audio_folder, tmp_path):  # noqa: F811
    plain, on_ray = outputs
    lines = on_ray.read_text().splitlines(keepends=True)
    cut = tmp_path / "interrupted.csv"
    cut.write_text("".join(lines[:4]) + lines[4][:20])  # killed while writing the 4th row
    assert predict("--model", ml_group_checkpoint, audio_folder, "-r", "-o", cut, "--ray", "--ray-workers", "1") == 0
    rows = read_csv(cut)
    assert len({row["file"] for row in rows}) == len(rows)
    assert_same_rows(rows, read_csv(plain))


def test_predict_on_ray_segments(cluster, ml_group_checkpoint, tmp_path):  # noqa: F811
    files = []
    for index, seconds in enumerate((4.5, 2.0, 6.2)):
        files.append(tmp_path / f"long{index}.wav")
        sf.write(files[-1], random_clip(seconds, seed=index), 16000)
    out = tmp_path / "segments.jsonl"
    assert predict("--model", ml_group_checkpoint, *files, "--segments", "--merge", "-o", out, "--ray") == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    options = SegmentOptions(merge=True)
    reference = predict_segments(str(ml_group_checkpoint), paths=list(map(str, files)), options=options)
    expected = [segment.to_row() for result in reference for segment in result.segments]
    assert_same_rows(rows, expected, key=lambda row: (row["file"], row["segment"], row["segments"]))


# Ray Serve


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(cluster, ml_group_checkpoint):  # noqa: F811
    from gemo_clap_hf.inference.serving import build_app, start_server

    app = build_app(str(ml_group_checkpoint), max_batch_size=8, max_bytes=MAX_BYTES)
    return start_server(app, port=free_port())


@pytest.fixture(scope="module")
def clips(ml_group_checkpoint, audio_folder, tmp_path_factory):  # noqa: F811
    """{name: (body, expected Prediction)}: the good clips (a 0.01 s clip is below the shortest clip a label can mean,
    0.25 s: it is one of the bad bodies, answered 400)."""
    files = good_files(audio_folder)
    expected = predict_files(str(ml_group_checkpoint), paths=files)
    assert len(expected) == len(files)
    return {Path(p.file).name: (Path(p.file).read_bytes(), p) for p in expected}


def post(url: str, body: bytes, content_type: str = "audio/wav", **kwargs):
    return requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=120, **kwargs)


def test_serve_answers_good_clips_raw_and_as_json(server, clips):
    for name, (body, prediction) in clips.items():
        answer = post(server, body)
        assert answer.status_code == 200, answer.text
        assert_answer(answer.json(), prediction)
        payload = json.dumps({"inputs": base64.b64encode(body).decode(), "parameters": {"top_k": 2}})
        answer = post(server, payload.encode(), "application/json")
        assert answer.status_code == 200, (name, answer.text)
        assert_answer(answer.json(), prediction, top_k=2)


def test_serve_segments_of_a_long_clip(server, ml_group_checkpoint, tmp_path):  # noqa: F811
    path = tmp_path / "long.wav"
    sf.write(path, random_clip(9.0, seed=11), 16000)
    answer = post(server + "?segments=true", path.read_bytes())
    assert answer.status_code == 200, answer.text
    [reference] = predict_segments(str(ml_group_checkpoint), paths=[str(path)])
    expected = [{**s.to_row(), "file": None} for s in reference.segments]
    rows = [{**row, "file": None} for row in answer.json()]
    assert len(rows) == 7
    assert_same_rows(rows, expected, key=lambda row: row["segment"])
    assert [row["start"] for row in rows] == [row["start"] for row in expected]


def flac_silence(seconds: float) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(seconds * 16000), dtype=np.int16), 16000, format="FLAC")
    return buffer.getvalue()


BAD_BODIES = {
    "empty": (b"", "audio/wav", 400, "holds no audio"),
    "random bytes": (bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)), "audio/wav", 400,
                     "cannot be read"),
    "too large": (b"\0" * (MAX_BYTES + 1), "audio/wav", 413, "--max-bytes"),
    "too long (11 min of FLAC silence)": (flac_silence(660), "audio/flac", 413, "--max-seconds"),
    "malformed JSON": (b'{"inputs": "UklGR', "application/json", 400, "not valid JSON"),
    "JSON without inputs": (b'{"audio": 1}', "application/json", 400, '{"inputs"'),
    "wrong content type": (b"hello", "text/plain", 415, "audio/*"),
    "form upload": (b"a=b", "application/x-www-form-urlencoded", 415, "Content-Type"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_serve_refuses_bad_bodies_with_the_reason(server, name):
    body, content_type, status, message = BAD_BODIES[name]
    answer = post(server, body, content_type)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]


def test_serve_under_load_answers_every_request(server, clips):
    """4 clients x 25 requests, a quarter of them bad: each answer right or its 4xx; the server still up."""
    good = list(clips.items())
    bad = [BAD_BODIES[name] for name in ("empty", "random bytes", "malformed JSON", "too large")]

    def client(seed: int) -> list[str]:
        rng, problems = np.random.default_rng(seed), []
        with requests.Session() as session:
            for request in range(25):
                if request % 4 == 3:
                    body, content_type, status, message = bad[int(rng.integers(len(bad)))]
                else:
                    body, prediction = good[int(rng.integers(len(good)))][1]
                    content_type, status = "audio/wav", 200
                answer = session.post(server, data=body, headers={"Content-Type": content_type}, timeout=120)
                if answer.status_code != status:
                    problems.append(f"{answer.status_code} instead of {status}: {answer.text[:200]}")
                elif status == 200:
                    assert_answer(answer.json(), prediction)
                elif message not in answer.json()["error"]:
                    problems.append(answer.text)
        return problems

    with ThreadPoolExecutor(4) as pool:
        problems = [p for found in pool.map(client, range(4)) for p in found]
    assert problems == []
    health = requests.get(server, timeout=30)
    assert health.status_code == 200 and health.json()["labels"] == list(LABELS[:4])


def test_serve_app_options_are_checked(ml_group_checkpoint):  # noqa: F811
    from gemo_clap_hf.errors import PredictionError
    from gemo_clap_hf.inference.serving import build_app

    for option, value in (("replicas", 0), ("max_batch_size", 0), ("batch_wait_ms", -1), ("max_bytes", 0)):
        with pytest.raises(PredictionError, match=option.replace("_", "-")):
            build_app(str(ml_group_checkpoint), **{option: value})
