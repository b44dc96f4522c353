"""Speaker turns (`predict --segments --turns`, `predict_segments(turns=...)`): on a generated two-speaker
conversation whose turns, speakers and emotions are known, windows stay inside turns and carry the right speaker, the
per-speaker summary adds up to the speakers' real speech time, and bad diarizations fail naming file, line and field.

The summary's shares are checked against an independent sampling of time (every 10 ms of a speaker's speech takes the
label of that speaker's window whose centre is nearest), not against the code that computes them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gemo_clap_hf.data.synthetic.recording import synthetic_conversation
from gemo_clap_hf.errors import PredictionError
from gemo_clap_hf.inference.backends import load_classifier
from gemo_clap_hf.inference.engine import predict_segments
from gemo_clap_hf.inference.segments import SegmentOptions
from gemo_clap_hf.inference.turns import read_turns, speaker_summary
from tests.helpers.tiny_models import save_tiny_checkpoint
from tests.inference.test_predict_bulk import read_csv, run_cli

RATE = 16000
WINDOW = 2.0


@pytest.fixture(scope="module")
def ml_model(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("turns") / "ml", audio_type="wavlm-base-plus", loss_type="ml")


def _write_conversation(folder: Path, turns_count: int, seed: int, session: int):
    """(wav, rttm, turns) of `synthetic_conversation(turns_count, seed, session)` written to `folder`."""
    waveform, turns = synthetic_conversation(turns_count, seed=seed, session=session)
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / "call.wav", waveform, RATE, subtype="FLOAT")
    rttm = folder / "call.rttm"
    rttm.write_text(
        "".join(f"SPEAKER call 1 {t.start:.4f} {t.end - t.start:.4f} <NA> <NA> {t.speaker} <NA> <NA>\n" for t in turns)
    )
    return folder / "call.wav", rttm, turns


@pytest.fixture(scope="module")
def conversation(tmp_path_factory):
    """Six turns of two speakers (A female, B male), each of one emotion, and its RTTM."""
    return _write_conversation(tmp_path_factory.mktemp("conversation"), 6, seed=1, session=5)


def sampled_shares(segments, turns, speaker):
    """Share of each label over `speaker`'s turns, sampled every 10 ms: the nearest-centred window of that speaker."""
    mine = [s for s in segments if s.speaker == speaker]
    centres = np.array([(s.start + s.end) / 2 for s in mine])
    counts: dict[str, int] = {}
    for turn in (t for t in turns if t.speaker == speaker):
        for t in np.arange(turn.start + 0.005, turn.end, 0.01):
            inside = [i for i, s in enumerate(mine) if s.start <= t < s.end]
            best = min(inside, key=lambda i: abs(centres[i] - t))
            counts[mine[best].emotion] = counts.get(mine[best].emotion, 0) + 1
    total = sum(counts.values())
    return {label: count / total for label, count in counts.items()}


def test_every_row_has_its_turns_speaker_and_the_summary_adds_up(ml_model, conversation):
    path, rttm, turns = conversation
    classifier, feature_extractor = load_classifier(str(ml_model))
    options = SegmentOptions(window=WINDOW, hop=1.0)
    [result] = predict_segments(classifier, feature_extractor, [str(path)], options, turns=str(rttm))
    assert {s.speaker for s in result.segments} == {"A", "B"}
    for segment in result.segments:  # inside one turn of its own speaker (RTTM times have 4 decimals)
        [turn] = [t for t in turns if t.start - 1e-4 <= segment.start and segment.end <= t.end + 1e-4]
        assert segment.speaker == turn.speaker
    for turn in turns:  # and every turn is covered from its start to its end
        mine = [s for s in result.segments if turn.start - 1e-4 <= s.start and s.end <= turn.end + 1e-4]
        assert mine[0].start == pytest.approx(turn.start, abs=1e-4) and mine[-1].end == pytest.approx(
            turn.end, abs=1e-4
        )
    summaries = {s.speaker: s for s in speaker_summary(result.segments)}
    assert list(summaries) == ["A", "B"]
    for speaker, summary in summaries.items():
        truth_s = sum(t.end - t.start for t in turns if t.speaker == speaker)
        assert summary.speech_s == pytest.approx(truth_s, abs=1e-3)  # the speaker's real speech time
        expected = sampled_shares(result.segments, turns, speaker)
        for label, share in summary.shares.items():
            assert share == pytest.approx(expected.get(label, 0.0), abs=0.01)
        assert summary.emotion == max(summary.shares, key=summary.shares.get)
        assert summary.gender in classifier.config.gender_labels
        assert sum(summary.gender_probabilities.values()) == pytest.approx(1.0)


@pytest.mark.slow
def test_a_trained_models_summary_matches_who_felt_what(learned_export, tmp_path):
    """A model trained on the synthetic corpus (the demo's learning settings, held-out UAR about 0.9) reads a
    conversation of that corpus' held-out session 5 speakers: within each turn at most one window is wrong, and
    each speaker's summary gives the true share of each emotion to within one window per turn."""
    path, rttm, turns = _write_conversation(tmp_path, 8, seed=0, session=5)  # the corpus' seed, its test session
    classifier, feature_extractor = load_classifier(str(learned_export["model"]))
    options = SegmentOptions(window=WINDOW, hop=1.0, vad=False)
    [result] = predict_segments(classifier, feature_extractor, [str(path)], options, turns=str(rttm))
    for turn in turns:
        mine = [s for s in result.segments if turn.start - 1e-4 <= s.start and s.end <= turn.end + 1e-4]
        assert {s.speaker for s in mine} == {turn.speaker}
        wrong = [s.emotion for s in mine if s.emotion != turn.emotion]
        assert len(wrong) <= 1, f"{turn}: {[s.emotion for s in mine]}"
    for summary in speaker_summary(result.segments):
        own = [t for t in turns if t.speaker == summary.speaker]
        speech_s = sum(t.end - t.start for t in own)
        truth = {label: sum(t.end - t.start for t in own if t.emotion == label) / speech_s for label in summary.shares}
        tolerance = WINDOW * len(own) / speech_s  # one window per turn, as a share of the speaker's speech
        for label, share in summary.shares.items():
            assert abs(share - truth[label]) <= tolerance, (summary.speaker, label, share, truth[label])
        # The dominant emotion is the true one, or one whose true share is within that tolerance of it (speaker B's
        # turns here split 0.32 / 0.28 / 0.26 / 0.14: the top two are half a window per turn apart).
        assert truth[summary.emotion] >= max(truth.values()) - tolerance


def test_turns_from_csv_jsonl_and_an_annotation_give_the_same_rows(ml_model, conversation, tmp_path):
    path, rttm, turns = conversation
    classifier, feature_extractor = load_classifier(str(ml_model))
    rows = [{"start": round(t.start, 4), "end": round(t.end, 4), "speaker": t.speaker} for t in turns]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "t.csv").write_text(
        "speaker,start,end\n" + "".join(f"{r['speaker']},{r['start']},{r['end']}\n" for r in rows)
    )

    class Segment:  # pyannote.core's Segment and Annotation, duck-typed
        def __init__(self, start, end):
            self.start, self.end = start, end

    class Annotation:
        def itertracks(self, yield_label=False):
            assert yield_label
            return iter([(Segment(r["start"], r["end"]), "_", r["speaker"]) for r in reversed(rows)])

    expected = read_turns(rttm)
    for source in (
        tmp_path / "t.jsonl",
        tmp_path / "t.csv",
        Annotation(),
        [(r["start"], r["end"], r["speaker"]) for r in rows],
    ):
        assert [t.speaker for t in read_turns(source)] == [t.speaker for t in expected]
        np.testing.assert_allclose(
            [(t.start, t.end) for t in read_turns(source)], [(t.start, t.end) for t in expected], atol=2e-4
        )


def test_merge_never_joins_two_speakers(ml_model, conversation):
    path, rttm, _ = conversation
    classifier, feature_extractor = load_classifier(str(ml_model))
    options = SegmentOptions(window=WINDOW, hop=1.0, merge=True)
    [merged] = predict_segments(classifier, feature_extractor, [str(path)], options, turns=str(rttm))
    [plain] = predict_segments(classifier, feature_extractor, [str(path)], SegmentOptions(window=WINDOW, hop=1.0))
    assert len({s.speaker for s in merged.segments}) == 2
    turns = read_turns(rttm)
    for segment in merged.segments:  # a merged run stays inside one turn
        assert any(t.start - 1e-4 <= segment.start and segment.end <= t.end + 1e-4 for t in turns)
    assert plain.segments[0].speaker is None and "speaker" not in plain.segments[0].to_row()


def test_cli_turns_adds_the_speaker_column_summary_and_lanes(capsys, ml_model, conversation, tmp_path):
    path, rttm, turns = conversation
    output, picture = tmp_path / "rows.csv", tmp_path / "lanes.png"
    args = ["predict", "--model", ml_model, path, "--segments", "--window", WINDOW, "--turns", rttm]
    code, _, err = run_cli(capsys, *args, "-o", output, "--plot", picture, "-q")
    assert code == 0, err
    rows = read_csv(output)
    assert list(rows[0])[:6] == ["file", "start", "end", "segment", "segments", "speaker"]
    for row in rows:
        [turn] = [t for t in turns if t.start - 1e-4 <= float(row["start"]) and float(row["end"]) <= t.end + 1e-4]
        assert row["speaker"] == turn.speaker
    assert "speakers of" in err and "  A: " in err and "  B: " in err and "gender" in err
    plain = tmp_path / "plain.csv"
    assert run_cli(capsys, "predict", "--model", ml_model, path, "--segments", "-o", plain, "-q")[0] == 0
    assert "speaker" not in read_csv(plain)[0]  # without --turns the columns are unchanged (resume relies on them)

    from gemo_clap_hf.inference.predictions import Segment, SegmentedFile
    from gemo_clap_hf.inference.timeline_plot import draw_timeline

    segments = [
        Segment(str(path), float(r["start"]), float(r["end"]), {"happy": 1.0}, speaker=r["speaker"]) for r in rows
    ]
    figure = draw_timeline(SegmentedFile(str(path), turns[-1].end, segments), labels=["happy"])
    assert [ax.get_ylabel() for ax in figure.axes][:2] == ["A", "B"]  # one lane per speaker


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "SPEAKER call 1 0.5 1.0 <NA> <NA> A <NA> <NA>\nSPEAKER call 1 x 1.0 <NA> <NA> B <NA> <NA>\n",
            "line 2, field 4",
        ),
        (
            "SPEAKER call 1 0.5 1.0 <NA> <NA> A <NA> <NA>\nSPEAKER call 1 1.2 1.0 <NA> <NA> B <NA> <NA>\n",
            "line 2, field start: .*overlaps.*line 1",
        ),
        ("SPEAKER call 1 -1 2.0 <NA> <NA> A <NA> <NA>\n", "line 1, field start: negative"),
        ("SPEAKER call 1 0.5 0 <NA> <NA> A <NA> <NA>\n", "line 1, field 5 .duration."),
        ("SPEAKER call 1 0.5\n", "line 1: an RTTM SPEAKER line has 10 fields"),
        ("SPEAKER call 1 0.5 1 <NA> <NA> A <NA> <NA>\nSPEAKER other 1 3 1 <NA> <NA> B <NA> <NA>\n", "2 recordings"),
    ],
)
def test_bad_rttm_names_the_file_line_and_field(tmp_path, text, message):
    (tmp_path / "bad.rttm").write_text(text)
    with pytest.raises(PredictionError, match=message) as raised:
        read_turns(tmp_path / "bad.rttm", recording="nothing")
    assert "bad.rttm" in str(raised.value)


def test_bad_tables_and_turns_past_the_end(capsys, ml_model, conversation, tmp_path):
    path, _, turns = conversation
    (tmp_path / "a.csv").write_text("start,end\n0,1\n")
    with pytest.raises(PredictionError, match=r"a.csv, line 1: the header lacks speaker"):
        read_turns(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("start,end,speaker\n0,1,A\n2,1.5,B\n")
    with pytest.raises(PredictionError, match=r"b.csv, line 3, field end: the turn ends"):
        read_turns(tmp_path / "b.csv")
    (tmp_path / "c.jsonl").write_text('{"start": 0, "end": 1, "speaker": "A"}\n{"start": 2, "end": 3\n')
    with pytest.raises(PredictionError, match=r"c.jsonl, line 2: not a JSON object"):
        read_turns(tmp_path / "c.jsonl")
    late = turns[-1].end + 5
    (tmp_path / "late.jsonl").write_text(
        json.dumps({"start": 0.2, "end": 1.0, "speaker": "A"})
        + "\n"
        + json.dumps({"start": 2.0, "end": late, "speaker": "B"})
        + "\n"
    )
    code, _, err = run_cli(
        capsys, "predict", "--model", ml_model, path, "--segments", "--turns", tmp_path / "late.jsonl"
    )
    assert code == 2 and "late.jsonl, line 2, field end" in err and "runs past the end" in err
    code, _, err = run_cli(capsys, "predict", "--model", ml_model, path, "--turns", tmp_path / "late.jsonl")
    assert code == 2 and "--turns only apply to --segments" in err
