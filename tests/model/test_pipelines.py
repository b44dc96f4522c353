"""Both audio pipelines called as users call them, on a saved tiny checkpoint (no ffmpeg, no torchaudio)."""

import numpy as np
import pytest
import soundfile
import torch
from transformers import AutoModelForAudioClassification, AutoProcessor, pipeline

from gemo_clap_hf import GEmoClapModel  # registers the model and the pipelines
from tests.helpers.tiny_models import random_clip

LABELS = {"neutral", "happy", "sad", "angry"}


@pytest.fixture(scope="module")
def classifier(tiny_checkpoint):
    return pipeline("audio-classification", model=str(tiny_checkpoint))


def test_numpy_array_gives_emotion_labels_with_probabilities(classifier):
    result = classifier(random_clip(1.2))
    assert all(set(item) == {"label", "score"} for item in result)
    assert [item["label"] for item in result if item["label"] not in LABELS] == []
    assert len(result) == 4
    assert sum(item["score"] for item in result) == pytest.approx(1.0, abs=1e-5)
    assert result == sorted(result, key=lambda item: -item["score"])


@pytest.mark.parametrize("rate", [8000, 44100])
def test_dict_input_at_other_rates_is_resampled(classifier, tiny_checkpoint, rate):
    clip16 = random_clip(1.0, sampling_rate=16000, seed=7)
    t = np.arange(rate) / rate
    clip = np.interp(t, np.arange(len(clip16)) / 16000, clip16).astype(np.float32)
    result = classifier({"array": clip, "sampling_rate": rate}, top_k=1)
    assert len(result) == 1 and set(result[0]) == {"label", "score"} and result[0]["label"] in LABELS

    # Same answer as resampling ourselves (librosa) and passing the 16 kHz array.
    import librosa

    resampled = librosa.resample(clip, orig_sr=rate, target_sr=16000, res_type="soxr_hq")
    direct = classifier(resampled, top_k=4)
    via_dict = classifier({"array": clip, "sampling_rate": rate}, top_k=4)
    assert [r["label"] for r in via_dict] == [r["label"] for r in direct]
    np.testing.assert_allclose([r["score"] for r in via_dict], [r["score"] for r in direct], atol=1e-6)


def test_pipeline_scores_equal_softmax_of_model_logits(classifier, tiny_checkpoint):
    clip = random_clip(0.9, seed=8)
    model = AutoModelForAudioClassification.from_pretrained(tiny_checkpoint).eval()
    processor = AutoProcessor.from_pretrained(tiny_checkpoint)
    with torch.no_grad():
        probs = model(**processor(audio=clip, sampling_rate=16000, return_tensors="pt")).logits.softmax(-1)[0]
    result = {item["label"]: item["score"] for item in classifier(clip)}
    for index, label in model.config.id2label.items():
        assert result[label] == pytest.approx(probs[index].item(), abs=1e-5)


def test_wav_path_and_stereo_input_are_decoded_without_ffmpeg(classifier, tmp_path):
    clip = random_clip(1.0, seed=9)
    stereo = np.stack([clip, clip], axis=1)
    soundfile.write(tmp_path / "stereo.wav", stereo, 16000, subtype="PCM_16")
    from_file = classifier(str(tmp_path / "stereo.wav"), top_k=4)
    from_array = classifier(clip, top_k=4)
    assert [r["label"] for r in from_file] == [r["label"] for r in from_array]
    np.testing.assert_allclose([r["score"] for r in from_file], [r["score"] for r in from_array], atol=1e-3)


def test_zero_shot_pipeline_with_candidate_labels(tiny_checkpoint):
    zero_shot = pipeline("zero-shot-audio-classification", model=str(tiny_checkpoint))
    labels = ["happy", "sad", "angry"]
    clip = random_clip(1.0)
    result = zero_shot(clip, candidate_labels=labels, hypothesis_template="{}")
    assert sorted(item["label"] for item in result) == sorted(labels)
    assert sum(item["score"] for item in result) == pytest.approx(1.0, abs=1e-5)

    # The scores are the softmax of the dual encoder's similarities to the bare label words ("{}" adds none).
    model = GEmoClapModel.from_pretrained(tiny_checkpoint).eval()
    inputs = AutoProcessor.from_pretrained(tiny_checkpoint)(
        audio=clip, text=labels, sampling_rate=16000, return_tensors="pt"
    )
    with torch.no_grad():
        probs = model(**inputs).logits_per_audio.softmax(-1)[0]
    scores = {item["label"]: item["score"] for item in result}
    for label, prob in zip(labels, probs.tolist()):
        assert scores[label] == pytest.approx(prob, abs=1e-6), label


@pytest.mark.parametrize("task", ["audio-classification", "zero-shot-audio-classification"])
def test_other_models_keep_the_stock_pipeline_class(tmp_path, task):
    """Importing gemo_clap_hf changes nothing for models that are not GEmo-CLAP."""
    from transformers import (
        AudioClassificationPipeline,
        ClapConfig,
        ClapModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForSequenceClassification,
        ZeroShotAudioClassificationPipeline,
    )

    if task == "audio-classification":
        config = Wav2Vec2Config(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=37,
            conv_dim=(16,) * 7,
            num_labels=3,
        )
        model, stock = Wav2Vec2ForSequenceClassification(config).eval(), AudioClassificationPipeline
        pipe = pipeline(task, model=model, feature_extractor=Wav2Vec2FeatureExtractor())
        assert len(pipe(random_clip(0.5))) == 3
    else:
        from transformers.pipelines import PIPELINE_REGISTRY

        model, stock = ClapModel(ClapConfig()).eval(), ZeroShotAudioClassificationPipeline
        # pipeline() would fetch CLAP's processor from the Hub; build the registered class as pipeline() does.
        pipe = PIPELINE_REGISTRY.supported_tasks[task]["impl"](model=model)
    assert type(pipe) is stock
