"""GEmoClapConfig: sub-configs survive every serialisation path; invalid values fail with clear errors."""

import pytest
from transformers import AutoConfig, BertConfig, HubertConfig, RobertaConfig, WavLMConfig

from gemo_clap_hf import GEmoClapConfig
from tests.helpers.tiny_models import tiny_audio_config, tiny_config, tiny_text_config


def test_defaults_are_wavlm_base_plus_and_roberta_base():
    config = GEmoClapConfig()
    assert isinstance(config.audio_config, WavLMConfig) and config.audio_config.hidden_size == 768
    assert isinstance(config.text_config, RobertaConfig) and config.text_config.hidden_size == 768
    assert (config.loss_type, config.alpha_e, config.projection_dim) == ("sl", 0.9, 512)
    assert config.id2label == {0: "neutral", 1: "happy", 2: "sad", 3: "angry"}
    assert config.label2id["angry"] == 3
    assert config.receptive_field == 400


def test_sub_configs_survive_dict_and_disk_round_trips(tmp_path):
    config = GEmoClapConfig(
        audio_config=tiny_audio_config("hubert"),
        text_config=tiny_text_config("bert").to_dict(),
        projection_dim=24,
        loss_type="ml",
        alpha_e=0.7,
        emotion_labels=["calm", "joy", "anger"],
        prompt_template="a {} voice",
        target_normalization="softmax",
    )
    for restored in (GEmoClapConfig.from_dict(config.to_dict()), _saved_and_loaded(config, tmp_path)):
        assert isinstance(restored.audio_config, HubertConfig) and restored.audio_config.hidden_size == 32
        assert isinstance(restored.text_config, BertConfig) and restored.text_config.vocab_size == 400
        without_auto_map = lambda c: {k: v for k, v in c.to_dict().items() if k not in ("auto_map", "_name_or_path")}  # noqa: E731
        assert without_auto_map(restored) == without_auto_map(config)
        assert restored.id2label == {0: "calm", 1: "joy", 2: "anger"}
        assert restored.prompts() == ["a calm voice", "a joy voice", "a anger voice"]


def _saved_and_loaded(config, folder):
    config.save_pretrained(folder)
    restored = AutoConfig.from_pretrained(folder)
    assert isinstance(restored, GEmoClapConfig)
    return restored


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"loss_type": "focal"}, "loss_type"),
        ({"alpha_e": -0.1}, "alpha_e"),
        ({"alpha_e": 1.01}, "alpha_e"),
        ({"target_normalization": "max"}, "target_normalization"),
        ({"projection_dim": 0}, "projection_dim"),
        ({"emotion_labels": ["happy"]}, "emotion_labels"),
        ({"emotion_labels": ["happy", "happy"]}, "emotion_labels"),
        ({"prompt_template": "no slot"}, "prompt_template"),
        ({"logit_scale_init_value": 0.0}, "logit_scale_init_value"),
        ({"audio_config": {"model_type": "bert"}}, "audio_config"),
    ],
)
def test_invalid_values_name_the_field(kwargs, field):
    with pytest.raises((ValueError, TypeError), match=field):
        tiny_config(**kwargs) if "audio_config" not in kwargs else GEmoClapConfig(**kwargs)
