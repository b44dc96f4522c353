"""The synthetic corpus' options: the control setting's speaker pitch does not depend on gender, the confounded
(default) one's does; the difficulty knobs do what they say. Pitch is measured on rendered audio (YIN)."""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest

from gemo_clap_hf.data.synthetic import (
    MANIFEST_NAME,
    RELEASE_DIR,
    CorpusOptions,
    generate_corpus,
    plan_corpus,
    render_utterance,
    speaker_voices,
)

SR = 16000
NEUTRAL_PER_SPEAKER = 3


def median_f0(audio: np.ndarray) -> float:
    """Median YIN f0 over the loud (voiced) frames."""
    f0 = librosa.yin(audio.astype(float), fmin=60, fmax=500, sr=SR, frame_length=1024, hop_length=256)
    energy = librosa.feature.rms(y=audio.astype(float), frame_length=1024, hop_length=256)[0][: len(f0)]
    return float(np.median(f0[energy > 0.3 * energy.max()]))


def speaker_pitches(options: CorpusOptions) -> dict[tuple[int, str], float]:
    """(session, gender) -> median over a few neutral utterances of their measured f0."""
    voices = speaker_voices(0, options.setting)
    pitches: dict[tuple[int, str], list[float]] = {}
    for utt in plan_corpus(0, 20):
        key = (utt.session, utt.gender)
        if utt.code == "neu" and len(pitches.setdefault(key, [])) < NEUTRAL_PER_SPEAKER:
            pitches[key].append(median_f0(render_utterance(0, utt, voices, SR, options)))
    return {key: float(np.median(values)) for key, values in pitches.items()}


@pytest.fixture(scope="module")
def confounded():
    return speaker_pitches(CorpusOptions())


@pytest.fixture(scope="module")
def control():
    return speaker_pitches(CorpusOptions(setting="control"))


def by_gender(pitches: dict) -> tuple[np.ndarray, np.ndarray]:
    return tuple(np.array([f0 for (_, g), f0 in pitches.items() if g == gender]) for gender in "FM")


def gender_accuracy_from_pitch(pitches: dict) -> float:
    """Accuracy of the best single pitch threshold at telling female from male speakers."""
    female, male = by_gender(pitches)
    values = np.sort(np.concatenate([female, male]))
    thresholds = (values[:-1] + values[1:]) / 2
    return max(((female > t).sum() + (male <= t).sum()) / len(values) for t in thresholds)


def test_confounded_speaker_pitch_follows_gender(confounded):
    female, male = by_gender(confounded)
    assert female.min() > 1.25 * male.max(), confounded
    assert gender_accuracy_from_pitch(confounded) == 1.0


def test_control_speaker_pitch_does_not_depend_on_gender(control):
    female, male = by_gender(control)
    # Each gender has low and high voices, their means are within 10 %, and pitch barely tells gender apart.
    for voices in (female, male):
        assert voices.min() < 140 and voices.max() > 170, control
    assert abs(np.log(female.mean() / male.mean())) < np.log(1.10), control
    assert gender_accuracy_from_pitch(control) <= 0.7


def test_control_keeps_the_same_speaker_pitches_only_dealt_differently():
    """The marginal distribution of speaker pitch is the same in both settings: only who gets which changes."""
    confounded, control = speaker_voices(0, "confounded"), speaker_voices(0, "control")
    assert sorted(v.base_f0 for v in control.values()) == sorted(v.base_f0 for v in confounded.values())
    assert [v.formant_scale for v in control.values()] == [v.formant_scale for v in confounded.values()]
    assert any(control[key].base_f0 != confounded[key].base_f0 for key in control)


def test_cue_scale_shrinks_the_level_cue_but_keeps_pitch_level():
    """Angry vs sad speech level (dB over active frames) shrinks with cue_scale 0; their pitch ratio does not."""
    voices = speaker_voices(0)
    picked = [u for u in plan_corpus(0, 40) if u.session == 1 and u.gender == "F" and u.code in ("ang", "sad")]

    def gaps(options):
        level, pitch = {}, {}
        for utt in picked:
            audio = render_utterance(0, utt, voices, SR, options).astype(float)
            rms = librosa.feature.rms(y=audio, frame_length=1024, hop_length=256)[0]
            level.setdefault(utt.code, []).append(20 * np.log10(np.percentile(rms, 90)))
            pitch.setdefault(utt.code, []).append(median_f0(audio))
        return np.mean(level["ang"]) - np.mean(level["sad"]), np.median(pitch["ang"]) / np.median(pitch["sad"])

    level_full, pitch_full = gaps(CorpusOptions())
    level_none, pitch_none = gaps(CorpusOptions(cue_scale=0.0))
    assert level_full > 6 and abs(level_none) < level_full / 2, (level_full, level_none)
    assert pitch_none == pytest.approx(pitch_full, rel=0.1) and pitch_none > 1.3


def test_spread_widens_the_per_utterance_pitch_spread():
    voices = speaker_voices(0)
    picked = [u for u in plan_corpus(0, 40) if u.session == 2 and u.gender == "M" and u.code == "neu"]

    def spread_of(options):
        return np.std(np.log([median_f0(render_utterance(0, u, voices, SR, options)) for u in picked]))

    assert spread_of(CorpusOptions(spread=2.0)) > 1.5 * spread_of(CorpusOptions())


def test_options_are_recorded_and_the_default_manifest_is_unchanged(tmp_path):
    generate_corpus(tmp_path / "default", utterances_per_speaker=1, progress=False)
    generate_corpus(tmp_path / "control", utterances_per_speaker=1, progress=False, setting="control", spread=1.5)
    read = lambda name: json.loads((tmp_path / name / RELEASE_DIR / MANIFEST_NAME).read_text())["settings"]  # noqa: E731
    assert read("default") == {"seed": 0, "utterances_per_speaker": 1, "sampling_rate": SR}
    assert read("control") == {**read("default"), "setting": "control", "spread": 1.5}


@pytest.mark.parametrize(
    ("options", "named"),
    [({"setting": "balanced"}, "setting"), ({"cue_scale": 1.5}, "cue_scale"), ({"spread": 0.0}, "spread")],
)
def test_bad_options_are_named(options, named):
    with pytest.raises(ValueError, match=named):
        CorpusOptions(**options)
