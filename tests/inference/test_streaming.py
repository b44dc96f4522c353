"""The streaming segment API (`inference.streaming.SegmentStream`) and `predict --segments --stream -`.

The reference is `predict_segments` on the whole recording written to a file (the file path: streamed decode, planned
windows, the engine's scorer); the stream gets the same samples in chunks of 1 sample to 10 s and must return the same
rows to 1e-4, with a buffer that never holds more than a window plus a chunk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gemo_clap_hf.data.synthetic.recording import synthetic_recording
from gemo_clap_hf.inference.backends import load_classifier
from gemo_clap_hf.inference.engine import predict_segments
from gemo_clap_hf.inference.segments import SegmentOptions, plan_windows
from gemo_clap_hf.inference.streaming import SegmentStream, _RegionWindows, stream_segments
from gemo_clap_hf.inference.vad import FRAME, VadSettings, vad_available
from tests.helpers.tiny_models import save_tiny_checkpoint

RATE = 16000
REPO = Path(__file__).resolve().parents[2]
needs_vad = pytest.mark.skipif(not vad_available(), reason="--vad needs silero-vad (the [app] extra)")


@pytest.fixture(scope="module")
def ml_model(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("stream") / "ml", audio_type="wavlm-base-plus", loss_type="ml")


@pytest.fixture(scope="module")
def loaded(ml_model):
    return load_classifier(str(ml_model))


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """12 s of generated speech (utterances and pauses, two emotion turns), as samples and as a FLOAT WAV file."""
    waveform, spans = synthetic_recording(12.0, seed=2, turn_s=(5.0, 7.0), utterance_s=(2.0, 3.0))
    path = tmp_path_factory.mktemp("rec") / "recording.wav"
    sf.write(path, waveform, RATE, subtype="FLOAT")
    return path, waveform, spans


def chunks(waveform: np.ndarray, size: int):
    return (waveform[start : start + size] for start in range(0, len(waveform), size))


def assert_same_rows(streamed, reference, labels):
    assert len(streamed) == len(reference) > 0
    for got, want in zip(streamed, reference):
        assert (got.start, got.end, got.index) == pytest.approx((want.start, want.end, want.index), abs=1e-9)
        np.testing.assert_allclose([got.probabilities[k] for k in labels], list(want.probabilities.values()), atol=1e-4)
        np.testing.assert_allclose(
            list(got.gender_probabilities.values()), list(want.gender_probabilities.values()), atol=1e-4
        )
        assert got.count is None  # unknown while the stream runs


def test_online_window_planning_equals_plan_windows():
    rng = np.random.default_rng(0)
    for _ in range(300):
        window, hop = int(rng.integers(2, 12)), None
        hop = int(rng.integers(1, window + 1))
        begin, end = int(rng.integers(0, 20)), None
        end = begin + int(rng.integers(1, 60))
        planner, found, known = _RegionWindows(begin, window, hop), [], begin
        while known < end:  # the region is known to last longer and longer, then closes
            known = min(end, known + int(rng.integers(1, 7)))
            found += planner.upto(known) if known < end else planner.close(end)
        assert found == plan_windows([(begin, end)], window, hop), (begin, end, window, hop)


@pytest.mark.parametrize("chunk_s", [1 / RATE, 0.1, 1.0, 10.0], ids=["1-sample", "0.1s", "1s", "10s"])
def test_stream_rows_equal_the_file_rows_whatever_the_chunk_size(loaded, recording, chunk_s):
    classifier, feature_extractor = loaded
    path, waveform, _ = recording
    [reference] = predict_segments(classifier, feature_extractor, [str(path)], SegmentOptions())
    stream = SegmentStream(classifier, feature_extractor, SegmentOptions(), name=str(path))
    size = max(1, int(round(chunk_s * RATE)))
    streamed, most = [], 0
    for chunk in chunks(waveform, size):
        streamed += stream.push(chunk)
        most = max(most, stream.held)
        assert stream.held <= stream.window + size  # memory: one window plus the chunk just pushed
    streamed += stream.flush()
    assert_same_rows(streamed, reference.segments, list(classifier.config.emotion_labels))
    assert most >= min(stream.window, len(waveform)) and stream.buffer.data.size <= 2 * (stream.window + size)
    assert all(s.file == str(path) for s in streamed)


def test_each_window_is_returned_by_the_push_that_completes_it(loaded, recording):
    classifier, feature_extractor = loaded
    _, waveform, _ = recording
    stream = SegmentStream(classifier, feature_extractor, SegmentOptions(window=2.0, hop=0.5))
    received = 0
    for chunk in chunks(waveform[: 6 * RATE], 1000):
        received += len(chunk)
        for segment in stream.push(chunk):
            assert received - 1000 < round(segment.end * RATE) <= received  # not earlier, not later
    # 6 s, 2 s windows every 0.5 s: starts 0 .. 4 s are complete before the flush, none comes at the end
    assert stream.count == 9 and stream.flush() == []


def test_merged_stream_equals_merged_file_rows(loaded, recording):
    classifier, feature_extractor = loaded
    path, waveform, _ = recording
    options = SegmentOptions(window=1.0, hop=0.5, merge=True)
    [reference] = predict_segments(classifier, feature_extractor, [str(path)], options)
    streamed = list(stream_segments(SegmentStream(classifier, feature_extractor, options), chunks(waveform, 4000)))
    assert [s.emotion for s in streamed] == [s.emotion for s in reference.segments]
    assert_same_rows(streamed, reference.segments, list(classifier.config.emotion_labels))


def test_a_stream_at_another_rate_is_resampled_as_the_whole_file(loaded, recording, tmp_path):
    import librosa

    classifier, feature_extractor = loaded
    _, waveform, _ = recording
    high = librosa.resample(waveform[: 7 * RATE], orig_sr=RATE, target_sr=44100).astype(np.float32)
    sf.write(tmp_path / "44k.wav", high, 44100, subtype="FLOAT")
    [reference] = predict_segments(classifier, feature_extractor, [str(tmp_path / "44k.wav")], SegmentOptions())
    stream = SegmentStream(classifier, feature_extractor, sampling_rate=44100)
    streamed = list(stream_segments(stream, chunks(high, 4410)))
    assert_same_rows(streamed, reference.segments, list(classifier.config.emotion_labels))
    pcm = (np.clip(high, -1, 1) * 32767).astype(np.int16)  # integer PCM is scaled as files are
    again = list(stream_segments(SegmentStream(classifier, feature_extractor, sampling_rate=44100), chunks(pcm, 999)))
    np.testing.assert_allclose(
        [s.probabilities["happy"] for s in again], [s.probabilities["happy"] for s in streamed], atol=2e-3
    )


@needs_vad
@pytest.mark.parametrize("chunk_s", [1 / RATE, 0.1, 10.0], ids=["1-sample", "0.1s", "10s"])
def test_streaming_vad_finds_the_file_paths_regions_and_rows(loaded, recording, chunk_s):
    classifier, feature_extractor = loaded
    path, waveform, spans = recording
    options = SegmentOptions(vad=True)
    [reference] = predict_segments(classifier, feature_extractor, [str(path)], options)
    assert len(reference.speech) == len(spans)  # the utterances are found (the file path's own check)
    stream = SegmentStream(classifier, feature_extractor, options, name=str(path))
    size = max(1, int(round(chunk_s * RATE)))
    settings = VadSettings()
    bound = stream.window + size + int(settings.min_silence_s * RATE) + 2 * FRAME
    streamed = []
    for chunk in chunks(waveform, size):
        streamed += stream.push(chunk)
        assert stream.held <= bound
    streamed += stream.flush()
    assert len(stream.regions) == len(reference.speech)
    np.testing.assert_allclose(stream.regions, reference.speech, atol=1e-9)
    assert_same_rows(streamed, reference.segments, list(classifier.config.emotion_labels))


@needs_vad
def test_streaming_vad_returns_a_window_inside_speech_without_waiting_for_the_pause(loaded):
    classifier, feature_extractor = loaded
    waveform, spans = synthetic_recording(12.0, seed=2, turn_s=(20.0, 30.0), utterance_s=(5.0, 6.0))
    first = spans[0]
    stream = SegmentStream(classifier, feature_extractor, SegmentOptions(window=2.0, vad=True))
    received, early = 0, []
    for chunk in chunks(waveform, 800):
        received += len(chunk)
        early += [received / RATE - s.end for s in stream.push(chunk) if s.end < first.end - 0.5]
    assert early and max(early) < 0.1  # emitted within a chunk and a silero frame of the window's end


def test_stream_usage_errors(loaded):
    classifier, feature_extractor = loaded
    stream = SegmentStream(classifier, feature_extractor, sampling_rate=8000)
    stream.push(np.zeros(4000, np.float32))
    with pytest.raises(ValueError, match="one stream has one sampling rate"):
        stream.push(np.zeros(10, np.float32), sampling_rate=22050)
    with pytest.raises(ValueError, match="NaN"):
        stream.push(np.full(10, np.nan, np.float32))
    stream.flush()
    with pytest.raises(ValueError, match="was flushed"):
        stream.push(np.zeros(10, np.float32))


def pcm_stream(seconds: float, seed: int) -> tuple[bytes, np.ndarray]:
    waveform, _ = synthetic_recording(seconds, seed=seed, turn_s=(4.0, 5.0), utterance_s=(2.0, 3.0))
    pcm = (np.clip(waveform, -1, 1) * 32767).astype("<i2")
    return pcm.tobytes(), pcm


def test_stream_command_in_a_real_pipe_writes_a_row_per_window_as_it_goes(ml_model, loaded, tmp_path):
    classifier, feature_extractor = loaded
    data, pcm = pcm_stream(8.0, seed=3)
    sf.write(tmp_path / "same.wav", pcm, RATE, subtype="PCM_16")
    [reference] = predict_segments(classifier, feature_extractor, [str(tmp_path / "same.wav")], SegmentOptions())
    command = [sys.executable, "-m", "gemo_clap_hf.cli.main", "predict", "--model", str(ml_model), "--segments"]
    command += ["--stream", "-", "--rate", str(RATE), "-q"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # half the audio, then wait for a row: rows come out while stdin is still open (flushed per row)
    child.stdin.write(data[: len(data) // 2])
    child.stdin.flush()
    first = json.loads(child.stdout.readline())
    assert first["start"] == 0 and first["end"] == pytest.approx(3.0) and first["file"] == "-"
    child.stdin.write(data[len(data) // 2 :])
    child.stdin.close()
    rest = [json.loads(line) for line in child.stdout.read().splitlines()]
    assert child.wait(timeout=120) == 0, child.stderr.read().decode()[-2000:]
    rows = [first, *rest]
    labels = list(classifier.config.emotion_labels)
    assert [r["segment"] for r in rows] == list(range(1, len(reference.segments) + 1))
    for row, want in zip(rows, reference.segments):
        assert (row["start"], row["end"]) == pytest.approx((want.start, want.end), abs=1e-6)
        np.testing.assert_allclose([row[k] for k in labels], list(want.probabilities.values()), atol=1e-4)
        assert row["gender"] == max(want.gender_probabilities, key=want.gender_probabilities.get)
        assert row["segments"] is None


def test_stream_command_usage_errors(ml_model, tmp_path, capsys):
    from gemo_clap_hf.cli.main import main

    assert main(["predict", "--model", str(ml_model)]) == 2
    assert "name at least one PATH" in capsys.readouterr().err
    assert main(["predict", "--model", str(ml_model), "--stream", "-"]) == 2
    assert "--stream only applies to --segments" in capsys.readouterr().err
    assert main(["predict", "--model", str(ml_model), "x.wav", "--segments", "--stream", "-"]) == 2
    assert "--stream - reads stdin" in capsys.readouterr().err
    assert main(["predict", "--model", str(ml_model), "--segments", "--stream", "-", "--rate", "0"]) == 2
    assert "--rate" in capsys.readouterr().err
