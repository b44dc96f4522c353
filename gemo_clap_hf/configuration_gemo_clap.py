"""GEmoClapConfig: one config for the audio tower, the text tower, the projection and the GEmo-CLAP loss.

Travels with saved models (`trust_remote_code`): imports only transformers and its sibling loss and auto_map files.
"""

from __future__ import annotations

import math

from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .auto_map_gemo_clap import auto_map_of_folder
from .loss_gemo_clap import LOSS_TYPES, TARGET_NORMALIZATIONS

DEFAULT_EMOTION_LABELS = ("neutral", "happy", "sad", "angry")
DEFAULT_GENDER_LABELS = ("female", "male")
# Temperatures are clamped at 100 after exp (as CLIP/CLAP do) so that the logits cannot blow up.
MAX_LOGIT_SCALE = 100.0


class GEmoClapConfig(PretrainedConfig):
    r"""Configuration of a GEmo-CLAP dual encoder.

    Args:
        audio_config: a speech-encoder config (WavLM, HuBERT, wav2vec 2.0, data2vec-audio) or a dict with
            `model_type`; defaults to WavLM base-plus shapes.
        text_config: a text-encoder config (RoBERTa, BERT, ...) or a dict with `model_type`; defaults to RoBERTa base.
        projection_dim: size of the shared embedding space.
        loss_type: `"emo"` (Emo-CLAP), `"sl"` (SL-GEmo-CLAP, soft labels) or `"ml"` (ML-GEmo-CLAP, multi-task).
        alpha_e: weight of the emotion term, in [0, 1] (SL: in the target matrix; ML: between the two losses).
        emotion_labels: emotion names, in class-id order; they are the classes and (through `prompt_template`) the
            text prompts. `id2label`, `label2id` and `num_labels` always follow them: passing or setting an
            `id2label`/`label2id` re-labels the model (the prompts follow), a different `num_labels` is an error.
        gender_labels: gender names, in id order; ML-GEmo-CLAP encodes them as text.
        prompt_template: how a label becomes text, e.g. `"{}"` or `"a person speaking in a {} voice"`.
        logit_scale_init_value: initial temperature scale (1/0.07, as CLIP), stored as its log.
        target_normalization: how each row of the positive-pair matrix becomes a distribution: `"sum"` (divide by the
            row sum, the default) or `"softmax"` (row softmax, a reading of the paper some reimplementations use).
        label_prompt_tokens: the tokenised label prompts, written by `model.set_prompts(tokenizer)`:
            `{"emotion": {"texts": [...], "input_ids": [[...]], "attention_mask": [[...]]}, "gender": {...}}`. Saved
            in config.json, so a folder written by `save_pretrained` alone classifies without a tokenizer (see
            `GEmoClapPromptTable`); None until prompts are set.
    """

    model_type = "gemo_clap"
    # A plain `Trainer` predicts the emotion logits alone, as for any audio classifier (the example's
    # `compute_metrics` takes one array): the classifier's embeddings and ML gender logits stay out of `predictions`.
    keys_to_ignore_at_inference = ["audio_embeds", "gender_logits"]
    sub_configs_defaults = {
        "audio_config": SubConfigSpec(config_class=AutoConfig, model_type="wavlm"),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="roberta"),
    }

    audio_config: PretrainedConfig | dict | None = None
    text_config: PretrainedConfig | dict | None = None
    projection_dim: int = 512
    loss_type: str = "sl"
    alpha_e: float = 0.9
    emotion_labels: list[str] | tuple[str, ...] = DEFAULT_EMOTION_LABELS
    gender_labels: list[str] | tuple[str, ...] = DEFAULT_GENDER_LABELS
    prompt_template: str = "{}"
    logit_scale_init_value: float = 1 / 0.07
    target_normalization: str = "sum"
    label_prompt_tokens: dict | None = None

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs):
        """`PretrainedConfig.from_dict`, with a new label set given as keywords applied before `num_labels` is checked.

        `from_pretrained(path, num_labels=3, id2label=..., label2id=...)` (the usual way to re-label a model)
        re-labels it: the saved `emotion_labels` give way to the given `emotion_labels`, `id2label` or `label2id`.
        """
        relabel = {key: kwargs[key] for key in ("emotion_labels", "id2label", "label2id") if kwargs.get(key)}
        if relabel:
            config_dict = {
                key: value
                for key, value in config_dict.items()
                if key not in ("emotion_labels", "id2label", "label2id")
            }
            config_dict.update(relabel)
        return super().from_dict(config_dict, **kwargs)

    def __post_init__(self, **kwargs):
        given_id2label = self.id2label or (_id2label_from_label2id(self.label2id) if self.label2id else None)
        super().__post_init__(**{key: value for key, value in kwargs.items() if key != "num_labels"})
        labels_given = self.emotion_labels is not DEFAULT_EMOTION_LABELS
        if given_id2label:
            from_map = _labels_from_id2label(given_id2label)
            if labels_given and [str(label) for label in self.emotion_labels] != from_map:
                raise ValueError(
                    f"`id2label` {dict(enumerate(from_map))} disagrees with `emotion_labels` "
                    f"{list(self.emotion_labels)}; "
                    "pass only `emotion_labels` (the classes, in id order): id2label/label2id are derived from it."
                )
            self.emotion_labels = from_map
        self.emotion_labels = [str(label) for label in self.emotion_labels]
        self.gender_labels = [str(label) for label in self.gender_labels]
        self._check_values()
        self._sync_label_maps()
        object.__setattr__(self, "_labels_ready", True)
        if kwargs.get("num_labels") is not None:
            self.num_labels = kwargs["num_labels"]  # validated by the setter

    def _sync_label_maps(self) -> None:
        # The emotion labels are the single source of truth for the classification head and the pipelines.
        object.__setattr__(self, "id2label", dict(enumerate(self.emotion_labels)))
        object.__setattr__(self, "label2id", {label: index for index, label in enumerate(self.emotion_labels)})

    def __setattr__(self, key, value):
        """Keep `id2label`, `label2id` and `num_labels` in step with `emotion_labels` after construction."""
        if not self.__dict__.get("_labels_ready"):
            return super().__setattr__(key, value)  # still being constructed
        if key == "num_labels":
            if value is not None and int(value) != len(self.emotion_labels):
                raise ValueError(
                    f"`num_labels={value}` disagrees with the {len(self.emotion_labels)} emotion labels "
                    f"{self.emotion_labels}: a GEmo-CLAP model's classes are its `emotion_labels`; pass "
                    "`emotion_labels=[...]` (one name per class, in id order) to re-label it."
                )
            return None
        if key in ("id2label", "label2id") and value is not None:
            labels = _labels_from_id2label(value if key == "id2label" else _id2label_from_label2id(value))
            return self.__setattr__("emotion_labels", labels)
        if key in ("emotion_labels", "gender_labels"):
            value = [str(label) for label in value]
        super().__setattr__(key, value)
        if key == "emotion_labels":
            self._check_values()
            self._sync_label_maps()
        return None

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """`PretrainedConfig.save_pretrained`, with an `auto_map` that names only files the folder holds: saved
        alone (the ONNX export writes it beside model.onnx), the model classes' entries are left out, since only the
        model copies modeling_gemo_clap.py."""
        with auto_map_of_folder(self, save_directory, "AutoConfig"):
            return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)

    def to_dict(self) -> dict:
        output = super().to_dict()
        output.pop("_labels_ready", None)  # construction state, not configuration
        return output

    def _check_values(self) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(
                f"`loss_type` must be one of {LOSS_TYPES} (Emo-CLAP, SL-, ML-GEmo-CLAP), got {self.loss_type!r}."
            )
        if self.target_normalization not in TARGET_NORMALIZATIONS:
            raise ValueError(
                f"`target_normalization` must be one of {TARGET_NORMALIZATIONS}, got {self.target_normalization!r}."
            )
        if (
            isinstance(self.alpha_e, bool)
            or not isinstance(self.alpha_e, (int, float))
            or not 0.0 <= self.alpha_e <= 1.0
        ):
            raise ValueError(f"`alpha_e` must be a number in [0, 1] (the emotion weight), got {self.alpha_e!r}.")
        if not isinstance(self.projection_dim, int) or self.projection_dim < 1:
            raise ValueError(f"`projection_dim` must be a positive integer, got {self.projection_dim!r}.")
        if not self.logit_scale_init_value > 0 or math.log(self.logit_scale_init_value) > math.log(MAX_LOGIT_SCALE):
            raise ValueError(
                f"`logit_scale_init_value` must be in (0, {MAX_LOGIT_SCALE}], got {self.logit_scale_init_value!r}."
            )
        for field, labels in (("emotion_labels", self.emotion_labels), ("gender_labels", self.gender_labels)):
            if len(labels) < 2 or len(set(labels)) != len(labels):
                raise ValueError(f"`{field}` needs at least two distinct labels, got {labels!r}.")
        if "{}" not in self.prompt_template:
            raise ValueError(
                f"`prompt_template` must contain '{{}}' where the label goes, got {self.prompt_template!r}."
            )
        for field, tower in (("audio_config", self.audio_config), ("text_config", self.text_config)):
            if not isinstance(tower, PretrainedConfig):
                raise TypeError(f"`{field}` must be a PretrainedConfig or a dict with `model_type`, got {type(tower)}.")
        if not hasattr(self.audio_config, "conv_kernel"):
            raise ValueError(
                f"`audio_config` must be a wav2vec2-family speech encoder (wavlm, hubert, wav2vec2, data2vec-audio), "
                f"got model_type {self.audio_config.model_type!r}."
            )

    @classmethod
    def from_audio_text_configs(cls, audio_config: PretrainedConfig, text_config: PretrainedConfig, **kwargs):
        """Build a config from the two tower configs (as `VisionTextDualEncoderConfig.from_vision_text_configs`)."""
        return cls(audio_config=audio_config.to_dict(), text_config=text_config.to_dict(), **kwargs)

    def prompts(self, labels: list[str] | None = None) -> list[str]:
        """The texts the text tower encodes for `labels` (default: the emotion labels)."""
        return [self.prompt_template.format(label) for label in (labels if labels is not None else self.emotion_labels)]

    @property
    def receptive_field(self) -> int:
        """Samples one output frame of the audio tower's CNN sees: clips shorter than this cannot be encoded."""
        field, stride = 1, 1
        for kernel, step in zip(self.audio_config.conv_kernel, self.audio_config.conv_stride):
            field += (kernel - 1) * stride
            stride *= step
        return field


def _id2label_from_label2id(label2id: dict) -> dict:
    return {index: name for name, index in label2id.items()}


def _labels_from_id2label(id2label: dict) -> list[str]:
    """Label names in id order from an `id2label` map (keys may be strings, as in JSON); ids must be 0..N-1."""
    by_id = {int(key): str(value) for key, value in id2label.items()}
    if sorted(by_id) != list(range(len(by_id))):
        raise ValueError(f"`id2label` must map ids 0..N-1 to label names, got keys {sorted(by_id)}.")
    return [by_id[index] for index in range(len(by_id))]


__all__ = ["GEmoClapConfig", "LOSS_TYPES", "MAX_LOGIT_SCALE"]
