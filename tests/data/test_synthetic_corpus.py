"""The embedded synthetic corpus: deterministic, in the IEMOCAP layout, with the intended acoustics.

Acoustic checks measure the written audio (a YIN pitch tracker), never the generator's parameters.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from gemo_clap_hf.data import CORPORA
from gemo_clap_hf.data.synthetic import (
    DROPPED_PER_KEPT,
    DURATION_BOUNDS,
    RELEASE_DIR,
    describe_corpus,
    generate_corpus,
    plan_corpus,
    render_utterance,
    speaker_voices,
)

PER_SPEAKER = 16
LABEL_LINE = re.compile(r"^\[([\d.]+) - ([\d.]+)\]\t(\S+)\t(\w+)\t\[[\d., ]+\]$")


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return generate_corpus(
        tmp_path_factory.mktemp("synthetic"), seed=0, utterances_per_speaker=PER_SPEAKER, progress=False
    )


@pytest.fixture(scope="module")
def dataset(corpus_dir):
    from gemo_clap_hf.data import load_corpus

    return load_corpus("iemocap", corpus_dir).to_pandas()


@pytest.fixture(scope="module")
def pitched(dataset):
    """The dataset with each clip's measured median f0 over its loud (voiced) frames."""
    return dataset.assign(f0=[median_f0(path) for path in dataset["audio"]])


def median_f0(path: str) -> float:
    """Median YIN f0 over frames whose energy is near the clip's loudest, i.e. inside syllables."""
    audio, sr = sf.read(path)
    f0 = librosa.yin(audio, fmin=60, fmax=500, sr=sr, frame_length=1024, hop_length=256)
    energy = librosa.feature.rms(y=audio, frame_length=1024, hop_length=256)[0][: len(f0)]
    return float(np.median(f0[energy > 0.3 * energy.max()]))


def label_lines(release: Path) -> list[tuple[int, str, str, float, float]]:
    """(session, utterance id, code, start, end) of every label line, parsed independently of the reader."""
    rows = []
    for path in sorted(release.glob("Session*/dialog/EmoEvaluation/*.txt")):
        session = int(path.parts[-4].removeprefix("Session"))
        for line in path.read_text().splitlines():
            if match := LABEL_LINE.match(line):
                start, end, uid, code = match.groups()
                rows.append((session, uid, code, float(start), float(end)))
    return rows


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def best_threshold_accuracy(values: np.ndarray, positive: np.ndarray) -> float:
    """Accuracy of the best rule `positive iff value > t`: how well one feature alone separates two groups."""
    ordered = positive[np.argsort(values)]
    below_negative = np.concatenate([[0], np.cumsum(~ordered)])
    above_positive = np.concatenate([np.cumsum(ordered[::-1])[::-1], [0]])
    return float(np.max(below_negative + above_positive) / len(values))


# --- determinism -------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    first, again, other = (
        generate_corpus(tmp_path / name, seed=seed, utterances_per_speaker=4, progress=False)
        for name, seed in (("a", 0), ("b", 0), ("c", 1))
    )
    reference = tree_bytes(first)
    assert any(name.endswith(".wav") for name in reference)
    assert tree_bytes(again) == reference
    assert tree_bytes(other) != reference


def test_audio_does_not_depend_on_generation_order():
    corpus = plan_corpus(0, 4)[:6]
    voices = speaker_voices(0)
    forward = [render_utterance(0, utt, voices, 16000) for utt in corpus]
    backward = [render_utterance(0, utt, voices, 16000) for utt in reversed(corpus)][::-1]
    for a, b in zip(forward, backward):
        np.testing.assert_array_equal(a, b)


def test_regenerating_is_a_no_op_and_a_different_corpus_needs_overwrite(tmp_path):
    generate_corpus(tmp_path, utterances_per_speaker=2, progress=False)
    wav = next((tmp_path / RELEASE_DIR).rglob("*.wav"))
    stamp = wav.stat().st_mtime_ns
    generate_corpus(tmp_path, utterances_per_speaker=2, progress=False)
    assert wav.stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="overwrite=True"):
        generate_corpus(tmp_path, utterances_per_speaker=3, progress=False)
    generate_corpus(tmp_path, utterances_per_speaker=3, progress=False, overwrite=True)
    assert describe_corpus(tmp_path)["utterances_per_speaker"] == 3


# --- layout and labels -------------------------------------------------------------------------------------


def test_writes_the_iemocap_layout(corpus_dir):
    release = corpus_dir / RELEASE_DIR
    assert sorted(p.name for p in release.glob("Session*")) == [f"Session{n}" for n in range(1, 6)]
    label_file = next(release.glob("Session1/dialog/EmoEvaluation/*.txt"))
    text = label_file.read_text()
    assert text.startswith("% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n")
    assert re.search(r"^C-E1:\t\w+;\t\(\)$", text, re.M) and re.search(
        r"^A-E1:\tval \d; act \d; dom  \d;\t\(\)$", text, re.M
    )
    for session, uid, _, start, end in label_lines(release):
        dialog = uid.rsplit("_", 1)[0]
        assert re.fullmatch(rf"Ses0{session}[FM]_(impro\d\d|script\d\d_\d)_[FM]\d{{3}}", uid)
        info = sf.info(release / f"Session{session}/sentences/wav/{dialog}/{uid}.wav")
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.duration == pytest.approx(end - start, abs=1e-3)


def test_both_speakers_appear_in_every_dialog(corpus_dir):
    speakers = {}
    for _session, uid, *_ in label_lines(corpus_dir / RELEASE_DIR):
        dialog, turn = uid.rsplit("_", 1)
        speakers.setdefault(dialog, set()).add(turn[0])
    assert speakers and all(found == {"F", "M"} for found in speakers.values())


def test_reader_sees_the_intended_counts_genders_folds_and_shares(corpus_dir, dataset):
    assert len(dataset) == 5 * 2 * PER_SPEAKER
    assert Counter(dataset["fold"]) == {str(n): 2 * PER_SPEAKER for n in range(1, 6)}
    assert (
        dataset["gender"] == dataset["id"].str.rsplit("_", n=1).str[1].str[0].map({"F": "female", "M": "male"})
    ).all()
    assert dataset.groupby(["fold", "gender"]).size().eq(PER_SPEAKER).all()
    shares = dataset["emotion"].value_counts(normalize=True)
    iemocap_counts = CORPORA["iemocap"].class_counts
    for emotion, count in iemocap_counts.items():
        assert shares[emotion] == pytest.approx(count / sum(iemocap_counts.values()), abs=0.03)
    codes = Counter(code for *_, code, _, _ in label_lines(corpus_dir / RELEASE_DIR))
    assert codes["exc"] > codes["hap"] > 0
    assert codes["fru"] + codes["xxx"] == 10 * math.ceil(PER_SPEAKER / DROPPED_PER_KEPT)
    summary = describe_corpus(corpus_dir)
    assert summary["utterances"] == len(dataset)
    assert summary["per_emotion"] == dataset["emotion"].value_counts().to_dict()


def test_durations_spread_like_iemocap(dataset):
    durations = dataset["duration"]
    assert 2.4 <= durations.median() <= 3.7
    assert DURATION_BOUNDS[0] <= durations.min() and durations.max() <= DURATION_BOUNDS[1]
    assert durations.between(1.5, 6.0).mean() >= 0.7
    assert durations.max() > 6.0  # a long tail, not a narrow band


# --- acoustics (measured) ----------------------------------------------------------------------------------


def test_female_pitch_is_higher_than_male_within_each_emotion(pitched):
    medians = pitched.groupby(["emotion", "gender"])["f0"].median().unstack()
    assert (medians["female"] > medians["male"] * 1.3).all(), medians


def test_aroused_pitch_is_higher_than_calm_pitch_within_each_speaker(pitched):
    medians = pitched.groupby(["speaker", "emotion"])["f0"].median().unstack()
    lowest_aroused = medians[["happy", "angry"]].min(axis=1)
    highest_calm = medians[["neutral", "sad"]].max(axis=1)
    assert (lowest_aroused > highest_calm).all(), medians


def test_sad_pitch_is_lower_than_neutral_within_each_gender(pitched):
    medians = pitched.groupby(["gender", "emotion"])["f0"].median().unstack()
    assert (medians["sad"] < medians["neutral"]).all(), medians


def test_absolute_pitch_confounds_gender_and_emotion(pitched):
    medians = pitched.groupby(["gender", "emotion"])["f0"].median()
    assert medians["female", "neutral"] > medians["male", "angry"]
    assert medians["female", "sad"] > medians["male", "happy"]
    # One pitch threshold separates aroused from calm speech well within a gender, poorly across both.
    aroused = pitched["emotion"].isin(["happy", "angry"]).to_numpy()
    f0 = pitched["f0"].to_numpy()
    pooled = best_threshold_accuracy(f0, aroused)
    for gender in ("female", "male"):
        mask = (pitched["gender"] == gender).to_numpy()
        assert best_threshold_accuracy(f0[mask], aroused[mask]) >= pooled + 0.1
    assert pooled < 0.8
