"""Long clips are cut into windows whose embeddings are averaged: one embedding (and one prediction) per clip.

A 62.5 s clip with 5 s windows (12 full windows and a 2.5 s tail) on the tiny model stands in for a 10-minute
file on a real one; the reference embedding is computed window by window, independently of the windowing code.
The other tests use a 12.5 s clip (three windows) to keep the suite fast.
"""

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from transformers import AutoModelForAudioClassification, pipeline

import gemo_clap_hf  # noqa: F401  (registers the model and the pipelines)
from gemo_clap_hf import GEmoClapFeatureExtractor, GEmoClapModel
from gemo_clap_hf.feature_extraction_gemo_clap import DEFAULT_MAX_LENGTH_S
from tests.helpers.tiny_models import random_clip

WINDOW_S = 5.0
RATE = 16000
LONG_S = 62.5
MEDIUM_S = 12.5


@pytest.fixture(scope="module")
def long_clip():
    return random_clip(LONG_S, seed=3)


@pytest.fixture(scope="module")
def medium_clip():
    return random_clip(MEDIUM_S, seed=6)


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    return GEmoClapModel.from_pretrained(tiny_checkpoint).eval()


@pytest.fixture(scope="module")
def windowed():
    return GEmoClapFeatureExtractor(max_length_s=WINDOW_S)


def _reference_embedding(model, clip: np.ndarray) -> torch.Tensor:
    """Each window through the feature extractor and the model on its own, then the length-weighted mean."""
    whole = GEmoClapFeatureExtractor(max_length_s=None)
    window = int(WINDOW_S * RATE)
    embeds, weights = [], []
    for start in range(0, len(clip), window):
        piece = clip[start : start + window]
        inputs = whole(piece, sampling_rate=RATE, padding=True, return_tensors="pt")
        with torch.no_grad():
            features = model.get_audio_features(inputs["input_values"], inputs["audio_attention_mask"])
            embeds.append(features.pooler_output[0])
        weights.append(len(piece))
    mean = sum(w * e for w, e in zip(weights, embeds)) / sum(weights)
    return F.normalize(mean, dim=-1)


def test_long_clip_becomes_windows_with_a_clip_index(windowed, long_clip):
    out = windowed([long_clip, random_clip(1.0)], sampling_rate=RATE, padding=True, return_tensors="pt")
    assert out["input_values"].shape == (14, int(WINDOW_S * RATE))
    assert out["clip_index"].tolist() == [0] * 13 + [1]
    assert out["audio_attention_mask"].sum(-1).tolist() == [80000] * 12 + [40000, 16000]


def test_short_clips_keep_the_usual_outputs(windowed):
    out = windowed([random_clip(1.0), random_clip(WINDOW_S)], sampling_rate=RATE)
    assert set(out) == {"input_values", "audio_attention_mask"}  # no clip_index when no clip was split


def test_a_tail_shorter_than_the_receptive_field_joins_the_last_window(windowed):
    clip = random_clip(2 * WINDOW_S + 100 / RATE)
    rows = windowed.split_into_windows(clip)
    assert [len(row) for row in rows] == [80000, 80100]


def test_default_window_and_none_keeps_whole_clips():
    assert GEmoClapFeatureExtractor().max_length_s == DEFAULT_MAX_LENGTH_S
    out = GEmoClapFeatureExtractor(max_length_s=None)(random_clip(40.0), sampling_rate=RATE)
    assert len(out["input_values"]) == 1 and "clip_index" not in out


@pytest.mark.parametrize("value", [0, -5, float("nan"), "30", True, 0.01])
def test_invalid_windows_are_rejected_with_the_field_named(value):
    with pytest.raises(ValueError, match="max_length_s"):
        GEmoClapFeatureExtractor(max_length_s=value)


def test_window_setting_survives_save_and_load(tmp_path):
    GEmoClapFeatureExtractor(max_length_s=12.5).save_pretrained(tmp_path)
    assert GEmoClapFeatureExtractor.from_pretrained(tmp_path).max_length_s == 12.5


def test_windowed_embedding_is_the_weighted_mean_of_window_embeddings(model, windowed, long_clip):
    inputs = windowed(long_clip, sampling_rate=RATE, padding=True, return_tensors="pt")
    calls = []
    hook = model.audio_model.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    model.window_batch_size = 4
    try:
        with torch.no_grad():
            embedding = model.get_audio_features(**inputs).pooler_output
    finally:
        hook.remove()
        model.window_batch_size = GEmoClapModel.window_batch_size
    assert calls == [4, 4, 4, 1]  # 13 windows, at most window_batch_size through the tower at once
    assert embedding.shape == (1, model.config.projection_dim)
    torch.testing.assert_close(embedding[0], _reference_embedding(model, long_clip), atol=1e-5, rtol=0)


def test_windows_of_different_clips_never_mix(model, windowed, medium_clip):
    short = random_clip(1.3, seed=4)
    with torch.no_grad():
        both = model.get_audio_features(
            **windowed([medium_clip, short], sampling_rate=RATE, padding=True, return_tensors="pt")
        )
        alone = model.get_audio_features(**windowed(short, sampling_rate=RATE, padding=True, return_tensors="pt"))
    both, alone = both.pooler_output, alone.pooler_output
    assert both.shape[0] == 2
    torch.testing.assert_close(both[1], alone[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(both[0], _reference_embedding(model, medium_clip), atol=1e-5, rtol=0)


def test_dual_encoder_and_classifier_give_one_row_per_clip(tiny_checkpoint, model, windowed, medium_clip):
    inputs = windowed([medium_clip, random_clip(0.7)], sampling_rate=RATE, padding=True, return_tensors="pt")
    text = {"input_ids": torch.tensor([[0, 5, 2], [0, 6, 2]]), "attention_mask": torch.ones(2, 3, dtype=torch.long)}
    with torch.no_grad():
        output = model(**inputs, **text, emotion_labels=torch.tensor([1, 2]), gender_labels=torch.tensor([0, 1]))
        classifier = AutoModelForAudioClassification.from_pretrained(tiny_checkpoint).eval()
        logits = classifier(**inputs).logits
    assert output.logits_per_audio.shape == (2, 2) and torch.isfinite(output.loss)
    assert logits.shape == (2, 4) and torch.isfinite(logits).all()


def test_wrong_clip_index_is_rejected(model, windowed, medium_clip):
    inputs = windowed(medium_clip, sampling_rate=RATE, padding=True, return_tensors="pt")
    with pytest.raises(ValueError, match="clip_index"):
        model.get_audio_features(
            inputs["input_values"], inputs["audio_attention_mask"], torch.zeros(2, dtype=torch.long)
        )
    with pytest.raises(ValueError, match="cover 0..C-1"):
        model.get_audio_features(**{**inputs, "clip_index": inputs["clip_index"] + 1})


def test_pipelines_return_one_result_per_long_clip(tiny_checkpoint, long_clip, medium_clip):
    classifier = pipeline("audio-classification", model=str(tiny_checkpoint))
    classifier.feature_extractor.max_length_s = WINDOW_S
    result = classifier(long_clip)
    assert len(result) == 4 and sum(item["score"] for item in result) == pytest.approx(1.0, abs=1e-5)
    # batch_size > 1 runs clips one at a time (the windows would mix in the stock collate), same answers.
    short = random_clip(0.8, seed=5)
    one = classifier(medium_clip)
    batched = classifier([medium_clip, short], batch_size=2)
    assert len(batched) == 2
    for result, expected in zip(batched, [one, classifier(short)]):
        assert [r["label"] for r in result] == [r["label"] for r in expected]
        np.testing.assert_allclose([r["score"] for r in result], [r["score"] for r in expected], atol=1e-6)

    zero_shot = pipeline("zero-shot-audio-classification", model=str(tiny_checkpoint))
    zero_shot.feature_extractor.max_length_s = WINDOW_S
    result = zero_shot(medium_clip, candidate_labels=["happy", "sad"], hypothesis_template="{}")
    assert len(result) == 2 and sum(item["score"] for item in result) == pytest.approx(1.0, abs=1e-5)


def test_predict_files_scores_every_window_of_a_long_file(tiny_checkpoint, model, windowed, tmp_path):
    """`gemo-clap predict` on a file longer than the window: the scores come from the whole file's embedding."""
    import math

    import soundfile as sf

    from gemo_clap_hf.inference.backends import load_classifier
    from gemo_clap_hf.inference.engine import predict_files

    # A voiced first window, then noise: the first window alone embeds far from the whole file.
    noise = 0.3 * np.random.default_rng(0).standard_normal(int(7.5 * RATE)).astype(np.float32)
    clip = np.concatenate([random_clip(WINDOW_S, seed=1), noise])
    path = tmp_path / "long.wav"
    sf.write(path, clip, RATE, subtype="FLOAT")
    classifier, _ = load_classifier(str(tiny_checkpoint))
    with torch.no_grad():  # the clamp's temperature: score differences big enough to see at 4 decimals
        classifier.gemo_clap.logit_scale_audio.fill_(math.log(100.0))
    [prediction] = predict_files(classifier, windowed, [path])
    with torch.no_grad():
        whole = classifier.label_logits(_reference_embedding(model, clip)[None], "emotion")[0].softmax(-1)
        first_window = windowed(clip[: int(WINDOW_S * RATE)], sampling_rate=RATE, padding=True, return_tensors="pt")
        first = classifier(first_window["input_values"], first_window["audio_attention_mask"]).logits[0].softmax(-1)
    scores = {item["label"]: item["score"] for item in prediction.emotions}
    expected = {label: float(whole[i]) for i, label in enumerate(classifier.config.emotion_labels)}
    assert scores == pytest.approx(expected, abs=1e-4)
    assert (whole - first).abs().max() > 1e-3  # the first window alone would give other scores
