"""`predict --segments`: window planning, streamed decoding, scores equal to predict on the cut-out clips, the VAD on
generated speech with known boundaries, merging, resumable CSV output, the timeline PNG and usage errors.

References are computed independently: the classifier on each cut-out clip written to its own file, numpy slices
of the whole decoded file, and the generator's own record of where each utterance lies.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gemo_clap_hf.data import load_audio
from gemo_clap_hf.data.audio import cut_windows, stream_waveform
from gemo_clap_hf.data.synthetic.recording import emotion_changes, synthetic_recording
from gemo_clap_hf.inference.backends import load_classifier
from gemo_clap_hf.inference.engine import predict_files, predict_segments
from gemo_clap_hf.inference.predictions import Segment
from gemo_clap_hf.inference.segments import SegmentOptions, merge_segments, plan_windows
from gemo_clap_hf.inference.vad import vad_available
from tests.helpers.tiny_models import random_clip
from tests.inference.test_predict_bulk import read_csv as read_rows
from tests.inference.test_predict_bulk import run_cli

RATE = 16000
HOP = 1.0
needs_vad = pytest.mark.skipif(not vad_available(), reason="--vad needs silero-vad (the [app] extra)")


@pytest.fixture(scope="module")
def ml_model(ml_checkpoint) -> Path:
    return ml_checkpoint


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """20 s of generated speech: utterances separated by pauses, two emotion turns.

    silero VAD, trained on real speech, misses a few of the synthetic voices' utterances (seed 1 has a happy one at
    speech probability 0.13); every utterance of seed 2 is clear (probability > 0.5 on 72-91% of its frames), so a
    miss here is a regression, not the generator."""
    waveform, spans = synthetic_recording(20.0, seed=2, turn_s=(9.0, 11.0), utterance_s=(2.0, 3.5))
    path = tmp_path_factory.mktemp("rec") / "recording.wav"
    sf.write(path, waveform, RATE, subtype="FLOAT")
    return path, spans


def test_windows_cover_each_region_and_end_on_its_end():
    assert plan_windows([(0, 10)], window=4, hop=2) == [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert plan_windows([(0, 11)], window=4, hop=3) == [(0, 4), (3, 7), (6, 10), (7, 11)]
    assert plan_windows([(5, 7), (20, 30)], window=4, hop=4) == [(5, 7), (20, 24), (24, 28), (26, 30)]


def test_streamed_blocks_and_windows_equal_slices_of_the_whole_decode(tmp_path):
    stereo_44k = np.stack([random_clip(7.3, 44100, seed=1), random_clip(7.3, 44100, seed=2)], -1)
    sf.write(tmp_path / "a.wav", stereo_44k, 44100, subtype="PCM_16")
    whole = load_audio(tmp_path / "a.wav")
    blocks = list(stream_waveform(tmp_path / "a.wav", RATE, block_s=2.0))
    assert len(blocks) > 3
    np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-6)
    windows = plan_windows([(100, len(whole))], window=3 * RATE, hop=RATE)
    for index, clip in cut_windows(iter(blocks), windows):
        start, end = windows[index]
        np.testing.assert_allclose(clip, whole[start:end], atol=1e-6)


def test_segment_scores_equal_predict_on_the_cut_out_clips(capsys, ml_model, recording, tmp_path):
    path, _ = recording
    output = tmp_path / "segments.csv"
    code, _, _ = run_cli(capsys, "predict", "--model", ml_model, path, "--segments", "-o", output, "-q")
    assert code == 0
    rows = read_rows(output)
    duration = sf.info(str(path)).frames / RATE
    assert float(rows[0]["start"]) == 0 and float(rows[-1]["end"]) == pytest.approx(duration, abs=1e-3)
    assert [int(r["segment"]) for r in rows] == list(range(1, len(rows) + 1))
    waveform = sf.read(path, dtype="float32")[0]
    rows = rows[:2] + rows[2:-2:4] + rows[-2:]  # both ends (the last window ends on the file's end) and a sample
    cut_files = []
    for number, row in enumerate(rows):
        start, end = round(float(row["start"]) * RATE), round(float(row["end"]) * RATE)
        sf.write(tmp_path / f"cut{number:03d}.wav", waveform[start:end], RATE, subtype="FLOAT")
        cut_files.append(str(tmp_path / f"cut{number:03d}.wav"))
    classifier, feature_extractor = load_classifier(str(ml_model))
    references = predict_files(classifier, feature_extractor, cut_files, batch_size=1)
    labels = list(classifier.config.emotion_labels)
    for row, reference in zip(rows, references):
        np.testing.assert_allclose([float(row[k]) for k in labels], list(reference.probabilities.values()), atol=1e-4)
        assert row["gender"] == max(reference.gender_probabilities, key=reference.gender_probabilities.get)


@needs_vad
def test_vad_segments_land_on_the_speech_within_one_hop(ml_model, recording):
    path, spans = recording
    classifier, feature_extractor = load_classifier(str(ml_model))
    [result] = predict_segments(classifier, feature_extractor, [str(path)], SegmentOptions(hop=HOP, vad=True))
    assert len(result.speech) == len(spans)  # one region per utterance: the pauses are found
    for (start, end), span in zip(result.speech, spans):
        assert abs(start - span.start) < HOP and abs(end - span.end) < HOP
    for segment in result.segments:  # every segment inside an utterance (within a hop), none in a pause
        assert any(span.start - HOP < segment.start and segment.end < span.end + HOP for span in spans)
    assert emotion_changes(spans)  # the recording does change emotion


def test_merge_joins_touching_segments_with_the_same_label():
    def seg(start, end, best):
        probabilities = {"neutral": 0.1, "sad": 0.1}
        probabilities[best] = 0.8
        return Segment("f.wav", start, end, probabilities)

    merged = merge_segments([seg(0, 3, "sad"), seg(1, 4, "sad"), seg(2, 5, "neutral"), seg(7, 9, "neutral")])
    assert [(s.start, s.end, s.emotion) for s in merged] == [(0, 4, "sad"), (2, 5, "neutral"), (7, 9, "neutral")]
    assert [(s.index, s.count) for s in merged] == [(0, 3), (1, 3), (2, 3)]


def test_merge_joins_back_to_back_windows_when_the_hop_equals_the_window():
    """`--hop` = `--window`: each window starts exactly where the previous one ends (start == previous end), as
    the engine times them (sample offsets / rate); same-label neighbours form one segment."""
    window = hop = int(0.7 * RATE)  # 0.7 s: times such as 2.1 s are not exact binary fractions
    windows = plan_windows([(0, 5 * window)], window, hop)
    assert all(start == previous_end for (_, previous_end), (start, _) in zip(windows, windows[1:]))
    labels = ["sad", "sad", "sad", "neutral", "neutral"]
    segments = []
    for (start, end), label in zip(windows, labels):
        probabilities = {"neutral": 0.2, "sad": 0.2, label: 0.8}
        segments.append(Segment("f.wav", start / RATE, end / RATE, probabilities))
    merged = merge_segments(segments)
    assert [(s.start, s.end, s.emotion) for s in merged] == [
        (0.0, 3 * window / RATE, "sad"),
        (3 * window / RATE, 5 * window / RATE, "neutral"),
    ]
    assert [(s.index, s.count) for s in merged] == [(0, 2), (1, 2)]


def test_merge_averages_gender_probabilities_and_keeps_pauses_apart():
    """An ML model's segments carry gender probabilities: a merged run gets their mean (and keeps its file); runs
    without them keep None. Same-label segments with a pause between them (even half a second) stay apart."""
    emotions = [{"neutral": 0.3, "sad": 0.7}, {"neutral": 0.1, "sad": 0.9}, {"neutral": 0.2, "sad": 0.8}]
    genders = [{"female": 0.6, "male": 0.4}, {"female": 0.8, "male": 0.2}, {"female": 0.1, "male": 0.9}]
    spans = [(0.0, 1.0), (1.0, 2.0), (2.5, 3.5)]  # back to back, then a 0.5 s pause
    segments = [Segment("a.wav", *span, e, g) for span, e, g in zip(spans, emotions, genders)]
    first, second = merge_segments(segments)
    assert (first.file, first.start, first.end, second.start, second.end) == ("a.wav", 0.0, 2.0, 2.5, 3.5)
    assert first.probabilities == pytest.approx({"neutral": 0.2, "sad": 0.8})
    assert first.gender_probabilities == pytest.approx({"female": 0.7, "male": 0.3})
    assert second.gender_probabilities == pytest.approx(genders[2])
    [alone] = merge_segments([Segment("b.wav", 0.0, 1.0, emotions[0])])
    assert alone.file == "b.wav" and alone.gender_probabilities is None


def test_segment_csv_resumes_a_file_that_was_cut_off_without_duplicates(capsys, ml_model, recording, tmp_path):
    path, _ = recording
    other = tmp_path / "other.wav"
    sf.write(other, random_clip(4.5, seed=7), RATE)
    output = tmp_path / "rows.csv"
    args = ["predict", "--model", ml_model, other, path, "--segments", "--merge", "-o", output, "-q"]
    assert run_cli(capsys, *args)[0] == 0
    complete = output.read_text()
    lines = complete.splitlines(keepends=True)
    output.write_text("".join(lines[:-2]) + lines[-2][:7])  # killed while writing the recording's rows
    code, _, err = run_cli(capsys, *args)
    assert code == 0 and "redone" in err and "1 already in" in err
    assert output.read_text() == complete
    assert run_cli(capsys, *args)[0] == 0 and output.read_text() == complete  # all done: nothing rewritten


def test_timeline_png_and_json_rows(capsys, ml_model, recording, tmp_path):
    path, _ = recording
    picture = tmp_path / "timeline.png"
    code, out, err = run_cli(capsys, "predict", "--model", ml_model, path, "--segments", "--plot", picture, "--json")
    assert code == 0 and "timeline in" in err
    rows = json.loads(out)
    assert rows[0]["file"] == str(path) and {"start", "end", "emotion", "score", "gender"} <= rows[0].keys()
    from PIL import Image

    image = np.asarray(Image.open(picture).convert("RGB"))
    assert image.shape[1] > 1000
    from gemo_clap_hf.inference.timeline_plot import label_colours

    # the predicted labels' colours are drawn in the emotion strip
    for label in {row["emotion"] for row in rows}:
        colour = np.array([int(label_colours([label])[label][i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(image.astype(int) - colour).sum(-1) < 10).sum() > 500, label


def test_segment_usage_errors(capsys, ml_model, recording, tmp_path):
    path, _ = recording
    code, _, err = run_cli(capsys, "predict", "--model", ml_model, path, "--vad")
    assert code == 2 and "--vad only apply to --segments" in err
    code, _, err = run_cli(capsys, "predict", "--model", ml_model, path, "--segments", "--window", "1", "--hop", "2")
    assert code == 2 and "--hop 2.0 is longer than --window 1.0" in err
    sf.write(tmp_path / "second.wav", random_clip(1.0), RATE)
    code, _, err = run_cli(
        capsys, "predict", "--model", ml_model, path, tmp_path, "--segments", "--plot", tmp_path / "x.png"
    )
    assert code == 2 and "--plot draws one recording" in err


def test_the_docs_commands_use_real_options_and_show_the_picture():
    import shlex

    from gemo_clap_hf.cli.main import build_parser

    doc = (Path(__file__).resolve().parents[2] / "docs" / "long_recordings.md").read_text()
    commands = [line.split("  #")[0] for line in doc.splitlines() if line.startswith("gemo-clap ")]
    assert len(commands) >= 4
    for command in commands:
        build_parser().parse_args(shlex.split(command)[1:])  # argparse exits on an unknown option
    assert (
        "](images/timeline.png)" in doc and (Path(__file__).resolve().parents[2] / "docs/images/timeline.png").is_file()
    )
