"""Property-based fuzzing of everything that takes raw audio: feature extractor, processor, classifier, pipelines.

Every generated clip either gives finite outputs (finite logits, scores summing to 1) or raises
`GEmoClapAudioError` naming the clip and the fix, and the test knows in advance which: clips that are empty,
hold NaN/inf or have an absurd peak must be rejected; everything else (silence, clipping, int PCM, stereo,
channel-first, any rate in 8-48 kHz, 0-60 s) must be classified. The example budget is fixed and derandomised
so that the suite stays fast and reproducible, and pinned clips make sure every case runs whatever the draws; the
model runs with small windows to bound its cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from transformers import AutoModelForAudioClassification, AutoProcessor, pipeline

import gemo_clap_hf  # noqa: F401  (registers the model and the pipelines)
from gemo_clap_hf import GEmoClapAudioError, GEmoClapFeatureExtractor

NAME = "fuzz/clip.wav"
WINDOW_S = 5.0  # small windows keep the tiny model's cost per long clip bounded
RATES = st.one_of(st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000]), st.integers(8000, 48000))
DTYPES = ("int16", "int32", "float32", "float64")
LAYOUTS = ("mono", "stereo", "channel_first")
# What the clip holds; the last three must be rejected.
CONTENTS = ("speechlike", "silence", "clipped", "dc_offset", "tiny", "loud_float", "nan", "inf", "huge")
REJECTED = {"nan": "NaN or infinite", "inf": "NaN or infinite", "huge": "peak amplitude"}


def fuzz_settings(examples: int):
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@dataclass
class Clip:
    array: np.ndarray
    rate: int
    content: str
    layout: str

    @property
    def samples(self) -> int:
        return self.array.shape[0] if self.layout != "channel_first" else self.array.shape[1]

    @property
    def expected_error(self) -> str | None:
        """The message fragment of the `GEmoClapAudioError` this clip must raise, or None if it must pass."""
        if self.samples == 0:
            return "is empty"
        return REJECTED.get(self.content)

    def __repr__(self) -> str:  # hypothesis prints failing examples: keep them readable
        return f"Clip({self.content}, {self.layout}, {self.array.dtype}, shape={self.array.shape}, rate={self.rate})"


def _signal(content: str, samples: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A float64 signal in about [-1, 1] (or deliberately outside it) for each kind of content."""
    t = np.arange(samples) / rate
    voiced = 0.3 * np.sin(2 * np.pi * rng.uniform(90, 300) * t) + 0.05 * rng.standard_normal(samples)
    if content == "silence":
        return np.zeros(samples)
    if content == "clipped":
        return np.clip(voiced * 50.0, -1.0, 1.0)
    if content == "dc_offset":
        return np.full(samples, 0.5)
    if content == "tiny":
        return voiced * 1e-30
    if content == "loud_float":  # un-normalised float audio (int16 values stored as float): accepted
        return voiced * 30000.0
    if content == "huge":
        return voiced * 1e30 + np.sign(voiced) * 1e29
    if content in ("nan", "inf") and samples:
        voiced[rng.integers(0, samples, size=max(1, samples // 1000))] = np.nan if content == "nan" else np.inf
    return voiced


def _encode(signal: np.ndarray, dtype: str) -> np.ndarray:
    if dtype.startswith("int"):
        limit = np.iinfo(dtype).max
        return np.clip(np.round(signal * limit), -limit - 1, limit).astype(dtype)
    return signal.astype(dtype)


ANY_LENGTH = st.floats(0.0, 60.0)


def make_clip(content: str, dtype: str, layout: str, rate: int, seconds: float, seed: int = 0) -> Clip:
    if dtype.startswith("int") and content in ("nan", "inf", "huge", "tiny", "loud_float"):
        dtype = "float64"  # integer PCM cannot hold these
    samples = int(seconds * rate)
    rng = np.random.default_rng(seed)
    channels = [_signal(content, samples, rate, rng) for _ in range(1 if layout == "mono" else 2)]
    array = _encode(np.stack(channels, axis=0 if layout == "channel_first" else 1), dtype)
    return Clip(array[:, 0] if layout == "mono" else array, rate, content, layout)


@st.composite
def clips(draw, seconds=ANY_LENGTH) -> Clip:
    rate = draw(RATES)
    dtype = draw(st.sampled_from(DTYPES))
    content = draw(st.sampled_from(CONTENTS))
    length = draw(seconds)
    layout = draw(st.sampled_from(LAYOUTS))
    return make_clip(content, dtype, layout, rate, length, seed=draw(st.integers(0, 2**32 - 1)))


# A fixed budget of draws need not reach every case (some dtypes, silence or channel-first clips can be missing):
# these run on every test on top of the draws. Together they cover every content, dtype and layout, both ends of
# the rate range and of the length range (empty, shorter than the receptive field, several windows, 60 s).
PINNED = [
    make_clip("speechlike", "int32", "channel_first", 8000, 60.0),
    make_clip("silence", "int16", "stereo", 48000, 2.0),
    make_clip("silence", "float32", "channel_first", 8000, 12.0),
    make_clip("clipped", "int32", "mono", 44100, 0.02),
    make_clip("dc_offset", "float32", "channel_first", 22050, 1.0),
    make_clip("tiny", "float64", "mono", 16000, 0.5),
    make_clip("loud_float", "float32", "stereo", 11025, 7.0),
    make_clip("speechlike", "int16", "mono", 16000, 0.0),
    make_clip("nan", "float32", "mono", 16000, 1.0),
    make_clip("inf", "float64", "channel_first", 48000, 0.3),
    make_clip("huge", "float64", "stereo", 8000, 1.0),
]


def with_pinned_clips(test):
    for clip in PINNED:
        test = example(clip=clip)(test)
    return test


# Mostly short clips, sometimes empty, barely above the receptive field, or long (several windows).
SHORT_OR_LONG = st.one_of(
    st.floats(0.0, 1.5),
    st.sampled_from([0.0, 0.0001, 0.02, 0.03, WINDOW_S + 0.01, 3 * WINDOW_S + 0.02, 60.0]),
)


def _check_rejection(clip: Clip, error: GEmoClapAudioError) -> None:
    assert clip.expected_error is not None, f"{clip!r} was rejected: {error}"
    assert clip.expected_error in str(error)
    assert NAME in str(error), f"the message does not name the clip: {error}"


def _assert_probabilities(scores: list[float], count: int) -> None:
    assert len(scores) == count and all(np.isfinite(scores))
    assert sum(scores) == pytest.approx(1.0, abs=1e-5)


@pytest.fixture(scope="module")
def classifier_and_processor(tiny_checkpoint):
    model = AutoModelForAudioClassification.from_pretrained(tiny_checkpoint).eval()
    model.window_batch_size = 3  # exercise the chunking on every long clip
    processor = AutoProcessor.from_pretrained(tiny_checkpoint)
    processor.feature_extractor.max_length_s = WINDOW_S
    return model, processor


@fuzz_settings(60)
@with_pinned_clips
@given(clip=clips())
def test_feature_extractor_gives_finite_rows_or_a_named_error(clip):
    extractor = GEmoClapFeatureExtractor(max_length_s=WINDOW_S)
    try:
        out = extractor([clip.array], sampling_rate=clip.rate, padding=True, names=[NAME], return_tensors="np")
    except GEmoClapAudioError as error:
        _check_rejection(clip, error)
        return
    assert clip.expected_error is None, f"{clip!r} should have been rejected ({clip.expected_error})"
    values, mask = out["input_values"], out["audio_attention_mask"]
    assert values.dtype == np.float32 and np.isfinite(values).all()
    assert values.shape[1] >= extractor.min_length and (mask.sum(-1) >= extractor.min_length).all()
    rows = values.shape[0]
    if "clip_index" in out:
        assert rows > 1 and out["clip_index"].tolist() == [0] * rows
    else:
        assert rows == 1
    # Real samples are zero-mean per window (silence stays exactly zero).
    for row, length in zip(values, mask.sum(-1)):
        assert abs(float(row[:length].mean())) < 1e-3


@fuzz_settings(25)
@with_pinned_clips
@given(clip=clips(seconds=SHORT_OR_LONG))
def test_classifier_gives_finite_logits_or_a_named_error(classifier_and_processor, clip):
    model, processor = classifier_and_processor
    companion = np.zeros(8000, dtype=np.float32)  # a second clip in the batch: rows must not mix across clips
    try:
        inputs = processor(
            audio=[clip.array, companion], sampling_rate=clip.rate, names=[NAME, "companion"], return_tensors="pt"
        )
    except GEmoClapAudioError as error:
        _check_rejection(clip, error)
        return
    assert clip.expected_error is None, f"{clip!r} should have been rejected ({clip.expected_error})"
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == (2, len(model.config.id2label)) and torch.isfinite(logits).all()
    _assert_probabilities(logits.softmax(-1)[0].tolist(), len(model.config.id2label))


def _pipeline_input(clip: Clip):
    """Arrays at 16 kHz as they are; other rates as the `datasets`-style dict, with the clip's name as its path."""
    if clip.rate == 16000:
        return clip.array
    return {"array": clip.array, "sampling_rate": clip.rate, "path": NAME}


def _run_pipeline(pipe, clip: Clip, **kwargs):
    try:
        return pipe(_pipeline_input(clip), **kwargs)
    except GEmoClapAudioError as error:
        assert clip.expected_error is not None, f"{clip!r} was rejected: {error}"
        assert clip.expected_error in str(error)
        # The dict carries its path; a bare array is described instead.
        assert (NAME if clip.rate != 16000 else f"array of shape {clip.array.shape}") in str(error)
        return None


@pytest.fixture(scope="module")
def audio_pipe(tiny_checkpoint):
    pipe = pipeline("audio-classification", model=str(tiny_checkpoint))
    pipe.feature_extractor.max_length_s = WINDOW_S
    return pipe


@pytest.fixture(scope="module")
def zero_shot_pipe(tiny_checkpoint):
    pipe = pipeline("zero-shot-audio-classification", model=str(tiny_checkpoint))
    pipe.feature_extractor.max_length_s = WINDOW_S
    return pipe


@fuzz_settings(15)
@with_pinned_clips
@given(clip=clips(seconds=SHORT_OR_LONG))
def test_audio_classification_pipeline_gives_probabilities_or_a_named_error(audio_pipe, clip):
    result = _run_pipeline(audio_pipe, clip)
    if result is not None:
        assert clip.expected_error is None, f"{clip!r} should have been rejected ({clip.expected_error})"
        _assert_probabilities([item["score"] for item in result], 4)


@fuzz_settings(15)
@with_pinned_clips
@given(clip=clips(seconds=SHORT_OR_LONG))
def test_zero_shot_pipeline_gives_probabilities_or_a_named_error(zero_shot_pipe, clip):
    labels = ["calm", "excited", "sad"]
    result = _run_pipeline(zero_shot_pipe, clip, candidate_labels=labels, hypothesis_template="{}")
    if result is not None:
        assert clip.expected_error is None, f"{clip!r} should have been rejected ({clip.expected_error})"
        _assert_probabilities([item["score"] for item in result], len(labels))
