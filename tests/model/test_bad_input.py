"""Bad input gets an error that names the problem (and the clip) and says what to do."""

import numpy as np
import pytest
import torch

from gemo_clap_hf import GEmoClapAudioError, GEmoClapFeatureExtractor, GEmoClapModel
from tests.helpers.tiny_models import random_clip, tiny_config, tiny_processor


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    return tiny_processor(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def model(processor):
    model = GEmoClapModel(tiny_config()).eval()
    model.set_prompts(processor.tokenizer)
    return model


@pytest.mark.parametrize(
    "clip, message",
    [
        (np.zeros(0, dtype=np.float32), "is empty"),
        (np.array([0.1, np.nan] * 400, dtype=np.float32), "NaN or infinite"),
        (np.array([0.1, np.inf] * 400, dtype=np.float32), "NaN or infinite"),
        (np.zeros((2, 3, 400), dtype=np.float32), "shape"),
        (np.array(["a", "b"]), "not a numeric array"),
    ],
)
def test_unusable_audio_is_rejected_with_the_clip_named(clip, message):
    extractor = GEmoClapFeatureExtractor()
    with pytest.raises(GEmoClapAudioError, match=message) as error:
        extractor([random_clip(0.5), clip], sampling_rate=16000, names=["good.wav", "bad.wav"])
    assert "bad.wav" in str(error.value)


def test_the_extractor_defaults_are_the_documented_ones_and_extra_keys_are_kept():
    """What `GEmoClapFeatureExtractor()` is (the engine falls back to it for a bare ONNX graph): 16 kHz mono,
    normalised, zero padding, masks, clips under the receptive field padded, 30 s windows; a key it does not know
    (from a newer preprocessor_config.json) is kept, as `FeatureExtractionMixin` keeps it."""
    settings = GEmoClapFeatureExtractor(newer_setting="kept").to_dict()
    expected = {
        "feature_size": 1,
        "sampling_rate": 16000,
        "padding_value": 0.0,
        "do_normalize": True,
        "return_attention_mask": True,
        "min_length": 400,
        "pad_short_clips": True,
        "max_length_s": 30.0,
        "newer_setting": "kept",
    }
    assert {key: settings[key] for key in expected} == expected


def test_windows_of_exactly_the_receptive_field_are_accepted():
    assert GEmoClapFeatureExtractor(max_length_s=0.025).window_samples == 400  # = min_length: enough
    with pytest.raises(ValueError, match="gives windows of 399 samples, fewer than `min_length` \\(400"):
        GEmoClapFeatureExtractor(max_length_s=399 / 16000)


def test_short_clips_are_padded_to_the_receptive_field_or_rejected():
    clip = random_clip(0.01)  # 160 samples < 400
    padded = GEmoClapFeatureExtractor()(clip, sampling_rate=16000)
    assert len(padded["input_values"][0]) == 400 and padded["audio_attention_mask"][0].sum() == 400
    strict = GEmoClapFeatureExtractor(pad_short_clips=False)
    with pytest.raises(GEmoClapAudioError, match="fewer than the audio encoder's receptive field"):
        strict(clip, sampling_rate=16000, names=["tiny.wav"])


def test_int_pcm_and_stereo_are_converted():
    extractor = GEmoClapFeatureExtractor(do_normalize=False)
    pcm = (random_clip(0.1) * 32767).astype(np.int16)
    out = extractor(pcm, sampling_rate=16000)["input_values"][0]
    np.testing.assert_allclose(out, pcm / 32768.0, atol=1e-7)
    stereo = np.stack([pcm, np.zeros_like(pcm)])  # (channels, time)
    np.testing.assert_allclose(extractor(stereo, sampling_rate=16000)["input_values"][0], pcm / 65536.0, atol=1e-7)
    np.testing.assert_allclose(extractor(stereo.T, sampling_rate=16000)["input_values"][0], pcm / 65536.0, atol=1e-7)


def test_model_rejects_audio_shorter_than_the_receptive_field(model):
    with pytest.raises(ValueError, match="receptive field"):
        model.get_audio_features(torch.zeros(1, 200))


def test_label_ids_out_of_range_are_named(model, processor):
    """Checked on the device without a host sync (`torch._assert_async`): on the CPU it raises at once."""
    inputs = processor(audio=[random_clip(0.5)] * 2, sampling_rate=16000, return_tensors="pt")
    with pytest.raises(RuntimeError, match=r"`emotion_labels` holds ids outside 0\.\.3.*label2id"):
        model(**inputs, emotion_labels=torch.tensor([1, 7]), gender_labels=torch.tensor([0, 1]))
    with pytest.raises(RuntimeError, match=r"`gender_labels` holds ids outside 0\.\.1"):
        model(**inputs, emotion_labels=torch.tensor([1, 2]), gender_labels=torch.tensor([0, 2]))


def test_mismatched_batch_sizes_are_named(model, processor):
    audio = processor(audio=[random_clip(0.5)] * 2, sampling_rate=16000, return_tensors="pt")
    with pytest.raises(ValueError, match=r"`emotion_labels` has shape \(3,\) but the batch has 2 clips"):
        model(**audio, emotion_labels=torch.tensor([1, 2, 0]), gender_labels=torch.tensor([0, 1]))


def test_missing_gender_labels_and_prompts_say_what_is_missing(processor):
    model = GEmoClapModel(tiny_config(loss_type="ml")).eval()
    inputs = processor(audio=[random_clip(0.5)] * 2, sampling_rate=16000, return_tensors="pt")
    with pytest.raises(RuntimeError, match=r"label prompts are not tokenised.*set_prompts\(tokenizer\)"):
        model(**inputs, emotion_labels=torch.tensor([1, 2]), gender_labels=torch.tensor([0, 1]))
    model.set_prompts(processor.tokenizer)
    with pytest.raises(ValueError, match="loss_type='ml' needs `gender_labels`"):
        model(**inputs, emotion_labels=torch.tensor([1, 2]))


def test_wrong_config_type_is_rejected():
    from transformers import WavLMConfig

    with pytest.raises(TypeError, match="GEmoClapConfig"):
        GEmoClapModel(WavLMConfig())
