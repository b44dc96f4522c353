"""GEmoClapModel (the dual encoder trained with the GEmo-CLAP losses) and GEmoClapForAudioClassification.

Travels with saved models (`trust_remote_code`): imports only torch, transformers and its sibling files.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import ModelOutput, SequenceClassifierOutput
from transformers.utils import WEIGHTS_INDEX_NAME, WEIGHTS_NAME

from .configuration_gemo_clap import MAX_LOGIT_SCALE, GEmoClapConfig
from .loss_gemo_clap import gather_across_processes, gemo_clap_loss


@dataclass
class GEmoClapOutput(ModelOutput):
    """What `GEmoClapModel.forward` returns: similarities, embeddings and (with labels) the GEmo-CLAP loss."""

    loss: torch.FloatTensor | None = None
    logits_per_audio: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    gender_text_embeds: torch.FloatTensor | None = None
    emotion_loss: torch.FloatTensor | None = None
    gender_loss: torch.FloatTensor | None = None


class GEmoClapProjection(nn.Module):
    """Linear → ReLU → Linear into the shared space (the L2 normalisation is applied by the caller)."""

    def __init__(self, input_dim: int, projection_dim: int):
        super().__init__()
        self.dense_in = nn.Linear(input_dim, projection_dim)
        self.activation = nn.ReLU()
        self.dense_out = nn.Linear(projection_dim, projection_dim)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.dense_out(self.activation(self.dense_in(hidden)))


def _safetensors_only_message(name_or_path, subfolder: str | None, error: OSError) -> str:
    """Why loading stopped and the fix, when no safetensors weights were found (transformers' error says neither)."""
    folder = os.path.join(str(name_or_path), subfolder or "")
    pickles = [name for name in (WEIGHTS_NAME, WEIGHTS_INDEX_NAME) if os.path.isfile(os.path.join(folder, name))]
    found = (f"{folder!r} holds only pickle weights ({', '.join(pickles)})" if pickles
             else f"no safetensors weights were found for {str(name_or_path)!r} ({error})")
    return (f"{found}. GEmo-CLAP loads weights from safetensors only, because unpickling a file can run arbitrary "
            "code. If you trust the file's source, load it once with use_safetensors=False and re-save it with "
            "save_pretrained (which writes model.safetensors); otherwise check the path or repository id.")


class GEmoClapPreTrainedModel(PreTrainedModel):
    config_class = GEmoClapConfig
    config: GEmoClapConfig
    base_model_prefix = "gemo_clap"
    main_input_name = "input_values"
    input_modalities = ("audio", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`, reading weights from safetensors only unless told otherwise.

        GEmo-CLAP checkpoints are always saved as safetensors, so a pickle file in their place is refused instead
        of unpickled (`use_safetensors=False` lifts this for checkpoints you trust).
        """
        defaulted = "use_safetensors" not in kwargs
        kwargs.setdefault("use_safetensors", True)
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except OSError as error:
            if not defaulted or "safetensors" not in str(error):
                raise
            raise OSError(_safetensors_only_message(pretrained_model_name_or_path, kwargs.get("subfolder"),
                                                    error)) from error

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, with both model classes in `auto_map`.

        One checkpoint serves every entry point: whichever class saved it, `trust_remote_code=True` users can load
        it with `AutoModel` and `AutoModelForAudioClassification` (both classes live in the copied modeling file).
        """
        if self._auto_class is not None:
            module = type(self).__module__.split(".")[-1]
            auto_map = dict(getattr(self.config, "auto_map", None) or {})
            auto_map["AutoModel"] = f"{module}.GEmoClapModel"
            auto_map["AutoModelForAudioClassification"] = f"{module}.GEmoClapForAudioClassification"
            self.config.auto_map = auto_map
        return super().save_pretrained(save_directory, *args, **kwargs)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, GEmoClapModel):
            initial = math.log(self.config.logit_scale_init_value)
            init.constant_(module.logit_scale_audio, initial)
            init.constant_(module.logit_scale_text, initial)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                init.zeros_(module.bias)
        else:
            super()._init_weights(module)


def _check_labels(name: str, labels: torch.Tensor, num_classes: int) -> None:
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)].unique().tolist()
        raise ValueError(
            f"`{name}` contains ids {bad} outside 0..{num_classes - 1}; map labels with `config.label2id` "
            "(or extend `emotion_labels`/`gender_labels` in the config)."
        )


def _first_unique_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the first occurrence of each distinct row, and the map from every row to its distinct row."""
    _, inverse = torch.unique(rows, dim=0, return_inverse=True)
    positions = torch.arange(len(inverse), device=rows.device)
    first = torch.full((int(inverse.max()) + 1,), len(inverse), device=rows.device, dtype=positions.dtype)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    return first, inverse


def _check_clip_index(clip_index: torch.Tensor, num_rows: int) -> int:
    """The number of clips that `clip_index` maps rows to, after checking it can come from the feature extractor."""
    fix = "pass the `clip_index` that GEmoClapFeatureExtractor returned with these `input_values`"
    if clip_index.shape != (num_rows,):
        raise ValueError(f"`clip_index` has shape {tuple(clip_index.shape)} for {num_rows} audio rows; {fix}.")
    counts = torch.bincount(clip_index) if num_rows and clip_index.min() >= 0 else None
    if counts is None or not bool((counts > 0).all()):
        raise ValueError(f"`clip_index` must map every row to a clip id and cover 0..C-1; {fix}.")
    return len(counts)


def average_windows(embeds: torch.Tensor, clip_index: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """One L2-normalised embedding per clip: the `weights`-weighted mean of its windows' embeddings, renormalised.

    Rows of `embeds` are windows of clips (`clip_index[row]` = its clip, 0..C-1); windows are weighted by their
    length in samples, so a short tail window counts for what it holds.
    """
    clip_index = clip_index.to(device=embeds.device, dtype=torch.long)
    num_clips = _check_clip_index(clip_index, embeds.shape[0])
    weighted = embeds.float() * weights.to(device=embeds.device, dtype=torch.float32)[:, None]  # float32 under autocast
    sums = weighted.new_zeros((num_clips, embeds.shape[1])).index_add(0, clip_index, weighted)
    return nn.functional.normalize(sums, dim=-1).to(embeds.dtype)


class GEmoClapModel(GEmoClapPreTrainedModel):
    """Speech encoder + text encoder projected into one space, trained with the Emo/SL/ML-GEmo-CLAP losses.

    `window_batch_size`: how many windows of long clips (see `GEmoClapFeatureExtractor.max_length_s`) go through
    the audio tower at once; lower it if long files run out of memory.
    """

    window_batch_size: int = 8

    def __init__(
        self,
        config: GEmoClapConfig,
        audio_model: PreTrainedModel | None = None,
        text_model: PreTrainedModel | None = None,
    ):
        # Compared by model_type, not class: with trust_remote_code the config class comes from another module copy.
        if getattr(config, "model_type", None) != GEmoClapConfig.model_type:
            raise TypeError(f"`config` must be a GEmoClapConfig, got {type(config).__name__}.")
        super().__init__(config)
        self.audio_model = audio_model if audio_model is not None else AutoModel.from_config(config.audio_config)
        self.text_model = text_model if text_model is not None else AutoModel.from_config(config.text_config)
        # The towers read their configs from the parent's, so that changes to one are seen by both.
        self.audio_model.config = config.audio_config
        self.text_model.config = config.text_config
        self.audio_projection = GEmoClapProjection(config.audio_config.hidden_size, config.projection_dim)
        self.text_projection = GEmoClapProjection(config.text_config.hidden_size, config.projection_dim)
        initial = math.log(config.logit_scale_init_value)
        self.logit_scale_audio = nn.Parameter(torch.tensor(initial))
        self.logit_scale_text = nn.Parameter(torch.tensor(initial))
        self.post_init()

    @classmethod
    def from_audio_text_pretrained(
        cls, audio_model_name_or_path: str, text_model_name_or_path: str, **config_kwargs
    ) -> GEmoClapModel:
        """Build the dual encoder from two pre-trained checkpoints (Hub ids or local folders).

        Keyword arguments prefixed `audio_` / `text_` go to the towers' `from_pretrained` (e.g. `audio_revision`);
        the rest go to `GEmoClapConfig` (e.g. `loss_type="sl"`, `alpha_e=0.9`). Projections and temperatures are
        newly initialised.
        """
        tower_kwargs = {"audio": {}, "text": {}}
        for key in list(config_kwargs):
            for tower in tower_kwargs:
                if key.startswith(f"{tower}_") and key not in ("audio_config", "text_config"):
                    tower_kwargs[tower][key[len(tower) + 1 :]] = config_kwargs.pop(key)
        audio_model = AutoModel.from_pretrained(audio_model_name_or_path, **tower_kwargs["audio"])
        text_model = AutoModel.from_pretrained(text_model_name_or_path, **tower_kwargs["text"])
        config = GEmoClapConfig.from_audio_text_configs(audio_model.config, text_model.config, **config_kwargs)
        return cls(config, audio_model=audio_model, text_model=text_model)

    @property
    def logit_scales(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(s_a, s_t): the exp'd temperatures, clamped at 100."""
        return (
            self.logit_scale_audio.exp().clamp(max=MAX_LOGIT_SCALE),
            self.logit_scale_text.exp().clamp(max=MAX_LOGIT_SCALE),
        )

    def freeze_feature_encoder(self) -> None:
        """Freeze the speech encoder's CNN, as usual when fine-tuning wav2vec2-family models."""
        self.audio_model.freeze_feature_encoder()

    def _frame_mask(self, audio_attention_mask: torch.Tensor, num_frames: int) -> torch.Tensor:
        # The encoder's own output-length formula, not an approximate ratio, so padding never shifts a clip's mean.
        lengths = self.audio_model._get_feat_extract_output_lengths(audio_attention_mask.sum(-1))
        return torch.arange(num_frames, device=lengths.device)[None, :] < lengths[:, None]

    def get_audio_features(
        self,
        input_values: torch.Tensor,
        audio_attention_mask: torch.Tensor | None = None,
        clip_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """L2-normalised audio embeddings: masked mean of the last hidden state, projected.

        With `clip_index` (rows are windows of long clips, as `GEmoClapFeatureExtractor` returns them) the windows
        are encoded `window_batch_size` at a time and averaged into one embedding per clip (`average_windows`).
        """
        if input_values.ndim != 2:
            raise ValueError(f"`input_values` must be (batch, samples), got shape {tuple(input_values.shape)}.")
        receptive_field = self.config.receptive_field
        if input_values.shape[-1] < receptive_field:
            raise ValueError(
                f"`input_values` has {input_values.shape[-1]} samples, fewer than the audio encoder's receptive field "
                f"({receptive_field}); pad clips with GEmoClapFeatureExtractor (it pads short clips) or pass longer audio."
            )
        if clip_index is None:
            return self._embed_rows(input_values, audio_attention_mask)
        return self._embed_windows(input_values, audio_attention_mask, clip_index)

    def _embed_rows(self, input_values: torch.Tensor, audio_attention_mask: torch.Tensor | None) -> torch.Tensor:
        hidden = self.audio_model(input_values, attention_mask=audio_attention_mask, return_dict=True).last_hidden_state
        if audio_attention_mask is None:
            pooled = hidden.mean(dim=1)
        else:
            mask = self._frame_mask(audio_attention_mask, hidden.shape[1]).unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return nn.functional.normalize(self.audio_projection(pooled), dim=-1)

    def _embed_windows(
        self, input_values: torch.Tensor, audio_attention_mask: torch.Tensor | None, clip_index: torch.Tensor
    ) -> torch.Tensor:
        """Encode windows in chunks (memory bounded by `window_batch_size`), then average them per clip."""
        step = max(1, int(self.window_batch_size))
        chunks = []
        for start in range(0, input_values.shape[0], step):
            values = input_values[start : start + step]
            mask = None if audio_attention_mask is None else audio_attention_mask[start : start + step]
            if mask is not None:  # drop the padding the whole batch shares but this chunk does not need
                length = max(int(mask.sum(-1).max()), self.config.receptive_field)
                values, mask = values[:, :length], mask[:, :length]
            chunks.append(self._embed_rows(values, mask))
        lengths = (
            audio_attention_mask.sum(-1)
            if audio_attention_mask is not None
            else torch.full((input_values.shape[0],), input_values.shape[1], device=input_values.device)
        )
        return average_windows(torch.cat(chunks), clip_index, lengths)

    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """L2-normalised text embeddings: the first token's last hidden state, projected."""
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = self.text_model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **extra)
        return nn.functional.normalize(self.text_projection(hidden.last_hidden_state[:, 0]), dim=-1)

    def encode_distinct_texts(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`get_text_features` for a batch of label prompts, running the text tower on distinct prompts only.

        A batch of N utterances holds at most #labels distinct prompts, so this costs a fraction of N text passes;
        rows are gathered back, so the result (and the loss) is the same as encoding every row.
        """
        key = input_ids if attention_mask is None else torch.cat([input_ids, attention_mask.to(input_ids.dtype)], -1)
        first, inverse = _first_unique_rows(key)
        pick = (lambda t: None if t is None else t[first])
        distinct = self.get_text_features(pick(input_ids), pick(attention_mask), pick(token_type_ids))
        return distinct[inverse]

    def forward(
        self,
        input_values: torch.Tensor,
        audio_attention_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        emotion_labels: torch.Tensor | None = None,
        gender_labels: torch.Tensor | None = None,
        gender_input_ids: torch.Tensor | None = None,
        gender_attention_mask: torch.Tensor | None = None,
        return_loss: bool | None = None,
        clip_index: torch.Tensor | None = None,
        **kwargs,
    ) -> GEmoClapOutput:
        """Embed audio and texts; with `emotion_labels` (and gender labels for SL/ML) also compute the loss.

        `attention_mask` is the text mask; the audio mask is always `audio_attention_mask`. `clip_index` (from the
        feature extractor, for clips split into windows) gives one audio embedding per clip.
        """
        if input_ids is None:
            raise ValueError("`input_ids` (the tokenised label prompts) are required; use get_audio_features for audio only.")
        audio_embeds = self.get_audio_features(input_values, audio_attention_mask, clip_index)
        text_embeds = self.encode_distinct_texts(input_ids, attention_mask, token_type_ids)
        scale_audio, scale_text = self.logit_scales
        logits_per_audio = scale_audio * audio_embeds @ text_embeds.t()
        logits_per_text = scale_text * text_embeds @ audio_embeds.t()

        want_loss = emotion_labels is not None if return_loss is None else return_loss
        gender_text_embeds = None
        if gender_input_ids is not None:
            gender_text_embeds = self.encode_distinct_texts(gender_input_ids, gender_attention_mask)
        losses = None
        if want_loss:
            losses = self._loss(audio_embeds, text_embeds, emotion_labels, gender_labels, gender_text_embeds)
        return GEmoClapOutput(
            loss=None if losses is None else losses.loss,
            logits_per_audio=logits_per_audio,
            logits_per_text=logits_per_text,
            audio_embeds=audio_embeds,
            text_embeds=text_embeds,
            gender_text_embeds=gender_text_embeds,
            emotion_loss=None if losses is None else losses.emotion_loss,
            gender_loss=None if losses is None else losses.gender_loss,
        )

    def _loss(self, audio_embeds, text_embeds, emotion_labels, gender_labels, gender_text_embeds):
        config = self.config
        if emotion_labels is None:
            raise ValueError("`return_loss=True` needs `emotion_labels` (one emotion id per clip).")
        _check_labels("emotion_labels", emotion_labels, len(config.emotion_labels))
        if gender_labels is not None:
            _check_labels("gender_labels", gender_labels, len(config.gender_labels))
        if config.loss_type == "ml" and gender_text_embeds is None:
            raise ValueError(
                "ML-GEmo-CLAP needs `gender_input_ids` (the tokenised gender prompts, one per clip); "
                "GEmoClapDataCollator adds them when the config's loss_type is 'ml'."
            )
        batch = gather_across_processes(
            audio=audio_embeds,
            text=text_embeds,
            gender_text=gender_text_embeds,
            emotion=emotion_labels,
            gender=gender_labels,
        )
        scale_audio, scale_text = self.logit_scales
        return gemo_clap_loss(
            batch["audio"],
            batch["text"],
            batch["emotion"],
            scale_audio,
            scale_text,
            loss_type=config.loss_type,
            alpha_e=config.alpha_e,
            gender_labels=batch["gender"],
            gender_text_embeds=batch["gender_text"],
            target_normalization=config.target_normalization,
        )


class GEmoClapForAudioClassification(GEmoClapPreTrainedModel):
    """Emotion classification by similarity to every emotion label's prompt; inference costs one audio pass.

    The label prompts are tokenised once (with the tokenizer saved beside the model, or given to `set_prompts`),
    encoded, and cached; the cache is rebuilt whenever the text tower's weights change (an optimizer step,
    `load_state_dict`, a dtype or device move), detected through the parameters' version counters.
    """

    def __init__(self, config: GEmoClapConfig):
        super().__init__(config)
        self.gemo_clap = GEmoClapModel(config)
        self._prompt_inputs: dict[str, dict[str, torch.Tensor]] = {}
        self._prompt_cache: dict[str, tuple[tuple, torch.Tensor]] = {}
        self.post_init()

    def freeze_feature_encoder(self) -> None:
        self.gemo_clap.freeze_feature_encoder()

    @property
    def window_batch_size(self) -> int:
        """Windows of long clips encoded at once (see `GEmoClapModel.window_batch_size`)."""
        return self.gemo_clap.window_batch_size

    @window_batch_size.setter
    def window_batch_size(self, value: int) -> None:
        self.gemo_clap.window_batch_size = value

    def set_prompts(self, tokenizer) -> None:
        """Tokenise the emotion and gender prompts once; needed before the first forward (done on `from_pretrained`)."""
        for kind, labels in (("emotion", self.config.emotion_labels), ("gender", self.config.gender_labels)):
            encoded = tokenizer(self.config.prompts(labels), padding=True, return_tensors="pt")
            self._prompt_inputs[kind] = dict(encoded)
        self._prompt_cache.clear()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`, then the label prompts tokenised with the saved tokenizer."""
        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        model._load_prompt_tokenizer(pretrained_model_name_or_path, kwargs)
        return model

    def _load_prompt_tokenizer(self, name_or_path, kwargs) -> None:
        from transformers import AutoTokenizer

        hub_kwargs = {k: kwargs[k] for k in ("revision", "token", "cache_dir", "local_files_only", "subfolder") if k in kwargs}
        try:
            # `config=` spares AutoTokenizer a second config load (which would ask again about remote code).
            tokenizer = AutoTokenizer.from_pretrained(name_or_path, config=self.config, **hub_kwargs)
        except (OSError, ValueError):
            return  # No tokenizer saved beside the weights: the user calls `set_prompts(tokenizer)` (named in the error).
        self.set_prompts(tokenizer)

    def _text_weights_version(self) -> tuple:
        text_parts = (self.gemo_clap.text_model, self.gemo_clap.text_projection)
        return tuple((p.data_ptr(), p._version, p.dtype, p.device) for part in text_parts for p in part.parameters())

    def label_embeddings(self, kind: str = "emotion") -> torch.Tensor:
        """Embeddings of every `kind` ("emotion" or "gender") label's prompt, in label-id order, cached."""
        if kind not in self._prompt_inputs:
            raise RuntimeError(
                "the label prompts are not tokenised: load the model with `from_pretrained` from a folder that holds "
                "its tokenizer, or call `model.set_prompts(tokenizer)` once."
            )
        track_grad = torch.is_grad_enabled() and self.training
        if not track_grad:
            version = self._text_weights_version()
            cached = self._prompt_cache.get(kind)
            if cached is not None and cached[0] == version:
                return cached[1]
        device = self.gemo_clap.text_projection.dense_in.weight.device
        inputs = {name: tensor.to(device) for name, tensor in self._prompt_inputs[kind].items()}
        embeds = self.gemo_clap.get_text_features(**inputs)
        if not track_grad:
            self._prompt_cache[kind] = (version, embeds.detach())
        return embeds

    def label_logits(self, audio_embeds: torch.Tensor, kind: str = "emotion") -> torch.Tensor:
        """s_a · similarity of audio embeddings to every `kind` ("emotion"/"gender") prompt, in label-id order.

        For callers that want both emotion and gender scores from one audio-tower pass (`get_audio_features`).
        """
        scale_audio, _ = self.gemo_clap.logit_scales
        return scale_audio * audio_embeds @ self.label_embeddings(kind).to(audio_embeds.dtype).t()

    def forward(
        self,
        input_values: torch.Tensor,
        audio_attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        clip_index: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """Logits = s_a · similarity to each emotion prompt, in `config.id2label` order; cross-entropy with labels.

        With `clip_index` (clips split into windows by the feature extractor) there is one row of logits per clip.
        """
        audio_embeds = self.gemo_clap.get_audio_features(input_values, audio_attention_mask, clip_index)
        logits = self.label_logits(audio_embeds, "emotion")
        loss = None
        if labels is not None:
            _check_labels("labels", labels, len(self.config.emotion_labels))
            loss = nn.functional.cross_entropy(logits.float(), labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)

    @torch.no_grad()
    def gender_logits(
        self,
        input_values: torch.Tensor,
        audio_attention_mask: torch.Tensor | None = None,
        clip_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scaled similarities to the gender prompts (meaningful for ML-GEmo-CLAP models, trained to align them)."""
        audio_embeds = self.gemo_clap.get_audio_features(input_values, audio_attention_mask, clip_index)
        return self.label_logits(audio_embeds, "gender")


__all__ = ["GEmoClapModel", "GEmoClapForAudioClassification", "GEmoClapOutput", "GEmoClapPreTrainedModel"]
