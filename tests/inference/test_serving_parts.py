"""Audio over the wire without a cluster: the Inference Endpoints handler called as the Endpoints toolkit calls it
(raw bytes for audio/* requests, the task's base64 JSON with parameters), the request parsing shared with
`gemo-clap serve`, and `RayPredictor` (the Ray Data callable) called on path, bytes and array batches.

Every score is checked against `predict_files` on the same file, which the package's own tests check against the
classifier one clip at a time.
"""

from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gemo_clap_hf.cli.main import main
from gemo_clap_hf.inference.audio_requests import RequestError, parse_request
from gemo_clap_hf.inference.engine import predict_files, predict_segments
from gemo_clap_hf.inference.ray_batch import RayPredictor
from gemo_clap_hf.inference.segments import SegmentOptions
from tests.helpers.tiny_models import random_clip
from tests.inference.test_predict_bulk import audio_folder, good_files, ml_group_checkpoint  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory, ml_group_checkpoint):  # noqa: F811
    """The folder `gemo-clap export-endpoint` writes, and its handler.py loaded as the Endpoints toolkit loads it."""
    out = tmp_path_factory.mktemp("endpoint") / "repo"
    assert main(["export-endpoint", "--model", str(ml_group_checkpoint), str(out)]) == 0
    spec = importlib.util.spec_from_file_location("handler", out / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return out, module.EndpointHandler(str(out))


@pytest.fixture(scope="module")
def expected(ml_group_checkpoint, audio_folder):  # noqa: F811
    return {p.file: p for p in predict_files(str(ml_group_checkpoint), paths=good_files(audio_folder))}


def assert_answer(answer: list[dict], prediction, top_k: int | None = None) -> None:
    """The pipeline's form, best first, cut to top_k, with the gender of an ML model on every element."""
    ranked = sorted(prediction.probabilities.items(), key=lambda item: -item[1])[:top_k]
    assert [a["label"] for a in answer] == [label for label, _ in ranked]
    np.testing.assert_allclose([a["score"] for a in answer], [score for _, score in ranked], atol=1.5e-4)
    best_gender = max(prediction.gender_probabilities, key=prediction.gender_probabilities.get)
    assert {a["gender"] for a in answer} == {best_gender}
    np.testing.assert_allclose(answer[0]["gender_score"], prediction.gender_probabilities[best_gender], atol=1.5e-4)


def test_export_endpoint_writes_the_repository(endpoint, ml_group_checkpoint):  # noqa: F811
    import gemo_clap_hf

    out, _ = endpoint
    assert (out / "requirements.txt").read_text().strip() == f"gemo-clap-hf=={gemo_clap_hf.__version__}"
    assert (out / "model.safetensors").read_bytes() == (ml_group_checkpoint / "model.safetensors").read_bytes()
    assert "class EndpointHandler" in (out / "handler.py").read_text()


def test_handler_round_trips_bytes_and_base64_json(endpoint, expected, audio_folder):  # noqa: F811
    _, handler = endpoint
    for name in ("a.wav", "b.flac", "d_44k_stereo.wav", "g.ogg"):
        path = str(audio_folder / name)
        body = (audio_folder / name).read_bytes()
        assert_answer(handler({"inputs": body}), expected[path])  # audio/* request: the body's bytes
        encoded = {"inputs": base64.b64encode(body).decode(), "parameters": {"top_k": 2}}
        assert_answer(handler(json.loads(json.dumps(encoded))), expected[path], top_k=2)
        softmax = {"inputs": base64.b64encode(body).decode(), "parameters": {"function_to_apply": "softmax"}}
        assert_answer(handler(softmax), expected[path])


def test_handler_segments_equal_predict_segments(endpoint, ml_group_checkpoint, tmp_path):  # noqa: F811
    _, handler = endpoint
    path = tmp_path / "long.wav"
    sf.write(path, random_clip(7.5, seed=5), 16000)
    rows = handler({"inputs": base64.b64encode(path.read_bytes()).decode(), "parameters": {"segments": True}})
    [reference] = predict_segments(str(ml_group_checkpoint), paths=[str(path)])
    assert len(rows) == len(reference.segments) == 6
    for row, segment in zip(rows, reference.segments):
        want = segment.to_row()
        del want["file"]
        assert list(row) == list(want)
        assert [row["start"], row["end"], row["segment"], row["emotion"]] == [
            want["start"], want["end"], want["segment"], want["emotion"]
        ]  # fmt: skip
        np.testing.assert_allclose(row["score"], want["score"], atol=1e-5)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"inputs": b""}, "holds no audio"),
        ({"inputs": bytes(range(256)) * 8}, "cannot be read"),
        ({"inputs": "not base64 !!"}, "not valid base64"),
        ({"inputs": 3}, "base64 string"),
        ({"audio": "x"}, '{"inputs"'),
        ({"inputs": "UklGRg==", "parameters": {"top_k": 0}}, "top_k"),
        ({"inputs": "UklGRg==", "parameters": {"function_to_apply": "sigmoid"}}, "softmax"),
        ({"inputs": "UklGRg==", "parameters": {"temperature": 2}}, "unknown parameters ['temperature']"),
    ],
)
def test_handler_refuses_bad_requests_with_the_reason(endpoint, data, message):
    _, handler = endpoint
    with pytest.raises(RequestError) as caught:
        handler(data)
    assert message in str(caught.value) and caught.value.status == 400
    assert "request-0" not in str(caught.value)  # the temporary file's name stays inside


def test_parse_request_follows_the_content_type():
    wav = b"RIFF...."
    assert parse_request(wav, "audio/wav").audio == wav
    assert parse_request(wav, "application/octet-stream", segments=True).segments
    payload = json.dumps({"inputs": base64.b64encode(wav).decode(), "parameters": {"top_k": 1}}).encode()
    parsed = parse_request(payload, "application/json; charset=utf-8")
    assert (parsed.audio, parsed.top_k) == (wav, 1)
    for body, kind, status in [
        (wav, "text/plain", 415),
        (b"{", "application/json", 400),
        (wav, "multipart/form-data", 415),
    ]:
        with pytest.raises(RequestError) as caught:
            parse_request(body, kind)
        assert caught.value.status == status


def test_ray_predictor_rows_from_paths_bytes_and_arrays(ml_group_checkpoint, audio_folder, expected):  # noqa: F811
    """The Ray Data callable without a cluster: its rows are `predict`'s rows, failures are rows with `error`."""
    predictor = RayPredictor(str(ml_group_checkpoint), batch_size=3)
    files = good_files(audio_folder)
    bad = [str(audio_folder / "corrupt.wav"), str(audio_folder / "missing.wav")]
    batches = {
        "path": {"path": np.array(files + bad)},
        "bytes": {"path": np.array(files), "bytes": np.array([Path(f).read_bytes() for f in files], dtype=object)},
    }
    for kind, batch in batches.items():
        table = predictor(batch)
        rows = {file: {k: v[i] for k, v in table.items()} for i, file in enumerate(table["file"])}
        assert set(rows) == set(files) | (set(bad) if kind == "path" else set()), kind
        for file in files:
            want = expected[file].to_row()
            assert rows[file]["error"] is None and rows[file]["emotion"] == want["emotion"]
            np.testing.assert_allclose([rows[file][k] for k in LABELS], [want[k] for k in LABELS], atol=1e-5)
            np.testing.assert_allclose(rows[file]["duration"], expected[file].duration, atol=1e-3)
        for file in bad if kind == "path" else []:
            assert rows[file]["emotion"] is None and file in rows[file]["error"]
    waveform = random_clip(1.3, seed=9)
    table = predictor({"array": np.array([waveform], dtype=object), "sampling_rate": np.array([16000])})
    [reference] = predict_files(str(ml_group_checkpoint), paths=[_write(audio_folder.parent / "array.wav", waveform)])
    np.testing.assert_allclose(table["neutral"][0], reference.probabilities["neutral"], atol=1e-5)
    assert table["file"] == ["row-0"]


def test_ray_predictor_segment_rows(ml_group_checkpoint, tmp_path):  # noqa: F811
    path = _write(tmp_path / "long.wav", random_clip(5.0, seed=3))
    table = RayPredictor(str(ml_group_checkpoint), segments=SegmentOptions(2.0, 1.0))({"path": np.array([path])})
    [reference] = predict_segments(str(ml_group_checkpoint), paths=[path], options=SegmentOptions(2.0, 1.0))
    assert table["segment"] == [s.index + 1 for s in reference.segments] and set(table["segments"]) == {4}
    np.testing.assert_allclose(table["angry"], [s.probabilities["angry"] for s in reference.segments], atol=1e-5)


LABELS = ("neutral", "happy", "sad", "angry", "gender_score")


def _write(path, waveform) -> str:
    sf.write(path, waveform, 16000, subtype="FLOAT")
    return str(path)


def test_the_readme_commands_parse():
    """The README's "Past one machine" block: each command is one this package's parser takes as written."""
    import re
    import shlex

    from gemo_clap_hf.cli.main import build_parser

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Past one machine\n\n```bash\n(.*?)```", readme, re.DOTALL).group(1)
    parsed = [build_parser().parse_args(shlex.split(line, comments=True)[1:]) for line in block.splitlines()]
    assert [args.command for args in parsed] == ["predict", "serve", "export-endpoint"]
    assert parsed[0].ray == "auto" and parsed[0].paths == ["calls/"]
    assert (parsed[1].max_batch_size, parsed[1].host, parsed[1].port) == (16, "127.0.0.1", 8000)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ray", "calls/"], "--ray 'calls/' is not a Ray address"),
        (["--ray-workers", "2"], "--ray-workers only applies to --ray"),
        (["--ray", "--ray-workers", "0"], "--ray-workers must be at least 1"),
        (["--ray", "--device", "cpu"], "drop --device"),
        (["--ray", "--segments", "--plot", "t.png"], "drop --ray"),
    ],
)
def test_ray_options_fail_before_anything_loads(audio_folder, capsys, argv, message):  # noqa: F811
    code = main(["predict", "--model", "no/such-model", str(audio_folder / "a.wav"), *argv])
    assert code == 2 and message in capsys.readouterr().err


def test_ray_rows_come_back_as_the_engines_results(ml_group_checkpoint, audio_folder, expected, tmp_path):  # noqa: F811
    """What `predict --ray` hands its writer: the `Prediction`s (genders too), `SegmentedFile`s and `Failure`s that
    the rows were made from, so the writer, resume and the summary see what they see without --ray."""
    from gemo_clap_hf.inference.predictions import Failure, SegmentedFile
    from gemo_clap_hf.inference.ray_batch import results_from_rows

    predictor = RayPredictor(str(ml_group_checkpoint))
    files = [*good_files(audio_folder)[:3], str(audio_folder / "corrupt.wav")]
    table = predictor({"path": np.array(files)})
    rows = [{k: v[i] for k, v in table.items()} for i in range(len(table["file"]))]
    results = {r.file: r for r in results_from_rows(rows, predictor.scorer.config, top_k=2)}
    assert isinstance(results[files[-1]], Failure) and "cannot be read" in results[files[-1]].reason
    for file in files[:3]:
        ours, want = results[file], expected[file]
        assert ours.to_row() == pytest.approx(want.to_row(), abs=1e-5) and len(ours.emotions) == 2
        assert ours.genders[0]["label"] == want.genders[0]["label"]
        assert ours.gender_probabilities == pytest.approx(want.gender_probabilities, abs=1e-5)
        assert ours.duration == pytest.approx(want.duration, abs=1e-3)
    long = [_write(tmp_path / f"long{i}.wav", random_clip(s, seed=i)) for i, s in enumerate((4.2, 6.0))]
    segmenter = RayPredictor(str(ml_group_checkpoint), segments=True)
    table = segmenter({"path": np.array(long)})
    rows = [{k: v[i] for k, v in table.items()} for i in range(len(table["file"]))]
    found = list(results_from_rows(rows, segmenter.scorer.config))
    reference = predict_segments(str(ml_group_checkpoint), paths=long)
    assert [type(r) for r in found] == [SegmentedFile, SegmentedFile]
    for ours, want in zip(found, reference):
        assert ours.file == want.file and ours.duration == pytest.approx(want.duration)
        assert len(ours.segments) == len(want.segments)
        for segment, reference_segment in zip(ours.segments, want.segments):
            assert segment.to_row() == pytest.approx(reference_segment.to_row(), abs=1e-5)


def test_the_serving_figure_is_on_request_and_summarises_latencies():
    from benchmarks.serving import latency_summary
    from benchmarks.settings import FIGURES, OPTIONAL_FIGURES, parse_args

    assert "serving" in OPTIONAL_FIGURES and "serving" not in FIGURES
    assert parse_args(["--quick", "--figures", "serving"]).figures == ("serving",)
    latencies = [0.1 * (i + 1) for i in range(100)]  # 0.1 .. 10 s
    summary = latency_summary(latencies, seconds=20.0)
    assert summary == {"requests": 100, "requests_per_s": 5.0, "p50_ms": 5050.0, "p99_ms": 9901.0}


def test_audio_past_max_seconds_is_refused_before_it_is_decoded(endpoint, tmp_path):
    """A few kB of FLAC silence can hold ten minutes: its length is read from the header and refused (413)."""
    from gemo_clap_hf.inference.audio_requests import DEFAULT_MAX_SECONDS

    path = tmp_path / "silence.flac"
    sf.write(path, np.zeros(int((DEFAULT_MAX_SECONDS + 1) * 16000), dtype=np.int16), 16000)
    assert path.stat().st_size < 200_000
    _, handler = endpoint
    for parameters in ({}, {"segments": True}):
        with pytest.raises(RequestError) as caught:
            handler({"inputs": base64.b64encode(path.read_bytes()).decode(), "parameters": parameters})
        assert caught.value.status == 413 and "601.0 s, over this server's limit of 600 s" in str(caught.value)


def test_ray_predictor_and_the_handler_on_the_onnx_backend(group_export, audio_folder, tmp_path):  # noqa: F811
    """`backend="onnx"`: the same rows as `predict --backend onnx` from the Ray Data callable and the handler."""
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    from gemo_clap_hf.inference.endpoint import EndpointHandler, export_endpoint

    _, out_dir, _ = group_export
    files = good_files(audio_folder)[:3]
    expected = {p.file: p for p in predict_files(str(out_dir), paths=files, backend="onnx")}
    table = RayPredictor(str(out_dir), backend="onnx")({"path": np.array(files)})
    for index, file in enumerate(table["file"]):
        np.testing.assert_allclose(table["neutral"][index], expected[file].probabilities["neutral"], atol=1e-5)
    repo = export_endpoint(str(out_dir), tmp_path / "onnx_endpoint", backend="onnx")
    assert "backend='onnx'" in (repo / "handler.py").read_text()
    assert (repo / "requirements.txt").read_text().startswith("gemo-clap-hf[onnx]==")
    answer = EndpointHandler(str(repo), "onnx")({"inputs": Path(files[0]).read_bytes()})
    assert answer[0]["label"] == expected[files[0]].emotions[0]["label"]
