"""GEmoClapModel (the dual encoder trained with the GEmo-CLAP losses) and GEmoClapForAudioClassification.

Travels with saved models (`trust_remote_code`): imports only torch, transformers and its sibling files.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling, ModelOutput, SequenceClassifierOutput
from transformers.utils import WEIGHTS_INDEX_NAME, WEIGHTS_NAME, can_return_tuple, logging

from .configuration_gemo_clap import MAX_LOGIT_SCALE, GEmoClapConfig
from .loss_gemo_clap import GEmoClapLoss, _assert_label_range
from .padding_gemo_clap import make_padding_invariant
from .prompts_gemo_clap import GEmoClapPromptTable
from .windows_gemo_clap import average_windows, embed_windows  # noqa: F401 - average_windows: re-exported

logger = logging.get_logger(__name__)
# `from_pretrained` keywords that also locate the tokenizer saved beside the weights.
_TOKENIZER_HUB_KWARGS = ("revision", "token", "cache_dir", "local_files_only", "subfolder", "trust_remote_code")


@dataclass
class GEmoClapOutput(ModelOutput):
    """What `GEmoClapModel.forward` returns (N clips; L emotion labels; T texts when `input_ids` are given).

    Args:
        loss: `()`, the configured GEmo-CLAP loss (with labels, or `return_loss=True`).
        logits_per_audio: `(N, L)` s_a-scaled similarities of every clip to every emotion label's prompt, in
            `config.id2label` order (no `input_ids`); `(N, T)` to the given texts otherwise.
        logits_per_text: `(L, N)` or `(T, N)`: the same similarities scaled by s_t, text-major.
        audio_embeds: `(N, projection_dim)` L2-normalised audio embeddings (one per clip, windows averaged).
        text_embeds: `(L, projection_dim)` the emotion label-prompt table, or `(T, projection_dim)` the given texts.
        emotion_loss: `()` the emotion contrastive term (Emo-CLAP: the loss; ML: L_emo; SL: None, its one target
            mixes emotion and gender).
        gender_loss: `()` ML-GEmo-CLAP's gender contrastive term L_g; None for the other variants.
        audio_model_output: what `get_audio_features` returned: the audio tower's `last_hidden_state`, and its
            `hidden_states`/`attentions` on request, with `pooler_output` = `audio_embeds` (see there for windowed
            clips).
        text_model_output: what `get_text_features` returned for the texts of `text_embeds`: always for given
            `input_ids`; for the label prompts only when hidden states or attentions were asked for (the prompt
            table is then encoded in this call instead of read from the cache).
    """

    loss: torch.FloatTensor | None = None
    logits_per_audio: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    emotion_loss: torch.FloatTensor | None = None
    gender_loss: torch.FloatTensor | None = None
    audio_model_output: BaseModelOutputWithPooling | None = None
    text_model_output: BaseModelOutputWithPooling | None = None

    def to_tuple(self) -> tuple:
        """Nested tower outputs become tuples too (as `ClapOutput` does), so `return_dict=False` holds no dicts."""
        return tuple(value.to_tuple() if isinstance(value, ModelOutput) else value for value in self.values())


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
    found = (
        f"{folder!r} holds only pickle weights ({', '.join(pickles)})"
        if pickles
        else f"no safetensors weights were found for {str(name_or_path)!r} ({error})"
    )
    return (
        f"{found}. GEmo-CLAP loads weights from safetensors only, because unpickling a file can run arbitrary "
        "code. If you trust the file's source, load it once with use_safetensors=False and re-save it with "
        "save_pretrained (which writes model.safetensors); otherwise check the path or repository id."
    )


class GEmoClapPreTrainedModel(PreTrainedModel):
    config_class = GEmoClapConfig
    config: GEmoClapConfig
    base_model_prefix = "gemo_clap"
    main_input_name = "input_values"
    input_modalities = ("audio", "text")
    supports_gradient_checkpointing = True
    # The two log-temperatures (in GEmoClapModel; `gemo_clap.`-prefixed in the classifier): never weight-decayed.
    logit_scale_parameter_names = ("logit_scale_audio", "logit_scale_text")
    _supports_sdpa = True
    _supports_flash_attn = True
    # Parameters that this class's own training step never uses: kept out of the trainable set (see
    # `_freeze_unused_parameters`).
    _unused_parameters: tuple[str, ...] = ()

    if not hasattr(PreTrainedModel, "activation_checkpointing_enable"):  # transformers < 5.24: only the old names

        def activation_checkpointing_enable(self, activation_checkpointing_kwargs=None, **kwargs):
            """transformers 5.24's name for `gradient_checkpointing_enable`, so callers need only one name."""
            self.gradient_checkpointing_enable(gradient_checkpointing_kwargs=activation_checkpointing_kwargs, **kwargs)

        def activation_checkpointing_disable(self):
            """transformers 5.24's name for `gradient_checkpointing_disable`."""
            self.gradient_checkpointing_disable()

        @property
        def is_activation_checkpointing(self) -> bool:
            return self.is_gradient_checkpointing

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """`PreTrainedModel.from_pretrained` (every keyword it takes), safetensors only unless told otherwise, then
        the label-prompt table: the token ids saved in the config, else (folders saved before they were, or a model
        re-labelled on loading) the tokenizer saved beside the weights (see `GEmoClapPromptTable`).

        GEmo-CLAP checkpoints are always saved as safetensors, so a pickle file in their place is refused instead
        of unpickled (`use_safetensors=False` lifts this for checkpoints you trust).
        """
        defaulted = "use_safetensors" not in kwargs
        kwargs.setdefault("use_safetensors", True)
        try:
            loaded = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except OSError as error:
            if not defaulted or "safetensors" not in str(error):
                raise
            raise OSError(
                _safetensors_only_message(pretrained_model_name_or_path, kwargs.get("subfolder"), error)
            ) from error
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # `output_loading_info=True` gives (model, info)
        model._freeze_unused_parameters()
        model._load_prompt_tokenizer(pretrained_model_name_or_path, kwargs)
        return loaded

    def _freeze_unused_parameters(self) -> None:
        """`requires_grad=False` on `_unused_parameters`, so DDP without `find_unused_parameters` (the Trainer's
        choice under gradient checkpointing) never waits for their gradient and no optimizer changes them.

        Called by `__init__` and again after `from_pretrained`, whose loader re-creates every loaded parameter as
        trainable. They stay in the state dict: the checkpoint still serves the other model class.
        """
        for name in self._unused_parameters:
            self.get_parameter(name).requires_grad_(False)

    def _output_flags(self, tower_config, output_hidden_states, output_attentions) -> dict:
        """The `output_hidden_states`/`output_attentions` keywords for a tower call: the argument when given, else
        the model's config or the tower's own sub-config when either asks for them (transformers' ModelTesterMixin
        sets both), else False."""
        flags = {}
        for name, value in (("output_hidden_states", output_hidden_states), ("output_attentions", output_attentions)):
            flags[name] = (
                value if value is not None else (getattr(self.config, name) or getattr(tower_config, name) or False)
            )
        return flags

    def _load_prompt_tokenizer(self, name_or_path, kwargs) -> None:
        """Keep the tokenizer saved beside the weights, if any, for prompts without saved ids (folders saved before
        the ids were, re-labelled models), then make the table's ids; warn when some cannot be made."""
        from transformers import AutoTokenizer

        hub_kwargs = {key: kwargs[key] for key in _TOKENIZER_HUB_KWARGS if key in kwargs}
        # No tokenizer beside the weights: the saved ids serve, or the error names the fix when they are used.
        with contextlib.suppress(OSError, ValueError, TypeError):
            # `config=` spares AutoTokenizer a second config load (which would ask again about remote code).
            tokenizer = AutoTokenizer.from_pretrained(name_or_path, config=self.config, **hub_kwargs)
            self.prompt_table.keep_tokenizer(tokenizer)
        self.prompt_table.refresh(self.device)
        if not self.prompt_table.has_prompts and self.config.label_prompt_tokens:
            logger.warning(f"{name_or_path}: {self.prompt_table.missing_message()}")

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained`, with both model classes in `auto_map` and the label prompts' token
        ids in config.json (`config.label_prompt_tokens`), so that the folder classifies without a tokenizer.

        One checkpoint serves every entry point: whichever class saved it, `trust_remote_code=True` users can load
        it with `AutoModel` and `AutoModelForAudioClassification` (both classes live in the copied modeling file).
        """
        self.prompt_table.refresh(self.device)
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


def _cover_receptive_field(
    input_values: torch.Tensor, audio_attention_mask: torch.Tensor, receptive_field: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows with fewer valid samples than the encoder's receptive field are scored as the feature extractor scores a
    short clip: zero-padded to the receptive field.

    Such a row (a hand-made mask; the feature extractor never makes one) has no frame: its masked mean would be a zero
    vector, whose L2 normalisation is 0/0 = NaN in float16 (`normalize`'s eps of 1e-12 underflows to 0) and a
    meaningless zero embedding in float32. Masks are read as valid lengths (right padding), as the towers read them;
    samples past each row's length are zeroed, as the feature extractor's padding is. No host synchronisation.
    """
    lengths = audio_attention_mask.sum(-1, keepdim=True)
    positions = torch.arange(input_values.shape[-1], device=input_values.device)[None, :]
    input_values = input_values * (positions < lengths).to(input_values.dtype)
    mask = (positions < lengths.clamp(min=receptive_field)).to(audio_attention_mask.dtype)
    return input_values, mask


def _drop_unused_modules(text_model: nn.Module) -> nn.Module:
    """Remove the text tower's pooler: GEmo-CLAP reads the first token's last hidden state, so a pooler would be a
    trainable module without gradient, which stops DDP without `find_unused_parameters` (the Trainer's choice under
    gradient checkpointing). RoBERTa/BERT-style models skip a `None` pooler."""
    if isinstance(getattr(text_model, "pooler", None), nn.Module):
        text_model.pooler = None
    return text_model


class GEmoClapModel(GEmoClapPreTrainedModel):
    """Speech encoder + text encoder projected into one space, trained with the Emo/SL/ML-GEmo-CLAP losses.

    The model holds the label-prompt table (`set_prompts`): the text of an utterance is its label's prompt, so the
    text tower encodes the fixed table (one prompt per label) and training, evaluation, the classifier and the
    benchmark all index it by label id.

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
        audio_model = audio_model if audio_model is not None else AutoModel.from_config(config.audio_config)
        text_model = text_model if text_model is not None else AutoModel.from_config(config.text_config)
        self.audio_model = make_padding_invariant(audio_model)
        self.text_model = _drop_unused_modules(text_model)
        # The towers read their configs from the parent's, so that changes to one are seen by both. The parent's
        # sub-configs first take the attention implementation the towers were built with: left at None, RoBERTa
        # attends to the padding of the label prompts (towers given by `from_audio_text_pretrained`).
        config.audio_config._attn_implementation = audio_model.config._attn_implementation
        config.text_config._attn_implementation = text_model.config._attn_implementation
        self.audio_model.config = config.audio_config
        self.text_model.config = config.text_config
        self.audio_projection = GEmoClapProjection(config.audio_config.hidden_size, config.projection_dim)
        self.text_projection = GEmoClapProjection(config.text_config.hidden_size, config.projection_dim)
        initial = math.log(config.logit_scale_init_value)
        self.logit_scale_audio = nn.Parameter(torch.tensor(initial))
        self.logit_scale_text = nn.Parameter(torch.tensor(initial))
        self.prompt_table = GEmoClapPromptTable(config)  # token ids saved in the config, not in the state dict
        self.rebuild_loss()
        self.post_init()

    @classmethod
    def from_audio_text_pretrained(
        cls, audio_model_name_or_path: str, text_model_name_or_path: str, **config_kwargs
    ) -> GEmoClapModel:
        """Build the dual encoder from two pre-trained checkpoints (Hub ids or local folders).

        Keyword arguments prefixed `audio_` / `text_` go to the towers' `from_pretrained` (e.g. `audio_revision`);
        the rest go to `GEmoClapConfig` (e.g. `loss_type="sl"`, `alpha_e=0.9`). Projections and temperatures are
        newly initialised; the label prompts are tokenised with the text encoder's tokenizer when it has one.
        """
        tower_kwargs = {"audio": {}, "text": {}}
        for key in list(config_kwargs):
            for tower in tower_kwargs:
                if key.startswith(f"{tower}_") and key not in ("audio_config", "text_config"):
                    tower_kwargs[tower][key[len(tower) + 1 :]] = config_kwargs.pop(key)
        audio_model = AutoModel.from_pretrained(audio_model_name_or_path, **tower_kwargs["audio"])
        text_model = AutoModel.from_pretrained(text_model_name_or_path, **tower_kwargs["text"])
        config = GEmoClapConfig.from_audio_text_configs(audio_model.config, text_model.config, **config_kwargs)
        model = cls(config, audio_model=audio_model, text_model=text_model)
        model._load_prompt_tokenizer(text_model_name_or_path, tower_kwargs["text"])
        return model

    # ----- temperatures -----------------------------------------------------------------------------------------

    @property
    def logit_scales(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(s_a, s_t): the exp'd temperatures, at most 100.

        The cap passes the gradient straight through (value min(x, log 100), derivative 1), so a log-scale above
        the cap is still pulled back down by the loss; `clamp_logit_scales_` (called by GEmoClapTrainer after every
        optimizer step, as open_clip does) keeps the parameters themselves at most log 100.
        """
        cap = math.log(MAX_LOGIT_SCALE)
        return tuple(
            (scale - (scale - scale.clamp(max=cap)).detach()).exp()
            for scale in (self.logit_scale_audio, self.logit_scale_text)
        )

    @torch.no_grad()
    def clamp_logit_scales_(self) -> None:
        """Clamp the log-temperature parameters to at most log(100), in place (after an optimizer step)."""
        for name in self.logit_scale_parameter_names:
            getattr(self, name).clamp_(max=math.log(MAX_LOGIT_SCALE))

    # ----- freezing ---------------------------------------------------------------------------------------------

    def freeze_feature_encoder(self) -> None:
        """Freeze the speech encoder's CNN, as usual when fine-tuning wav2vec2-family models."""
        self.audio_model.freeze_feature_encoder()

    def freeze_text_embeddings(self) -> None:
        """Stop training the text tower's word embeddings.

        Only the prompt tokens' rows would get gradient, but an AdamW step still updates (and weight-decays) the
        whole matrix: 39 M of RoBERTa base's parameters, a fixed cost per step that dominates at small batches.
        """
        self.text_model.get_input_embeddings().requires_grad_(False)

    # ----- label prompts and loss ------------------------------------------------------------------------------

    def set_prompts(self, tokenizer) -> None:
        """Tokenise every emotion and gender label's prompt once (`GEmoClapPromptTable.set_prompts`); the ids are
        saved with the model. Done by `from_audio_text_pretrained`, by `from_pretrained` of a folder without saved
        ids and by GEmoClapTrainer; call it yourself for a model built from a bare config."""
        self.prompt_table.set_prompts(tokenizer, self.text_projection.dense_in.weight.device)

    @property
    def has_prompts(self) -> bool:
        return self.prompt_table.has_prompts

    def _prompt_inputs(self, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The tokenised prompts of `kind` (see `GEmoClapPromptTable.inputs`)."""
        return self.prompt_table.inputs(kind, self.text_projection.dense_in.weight.device)

    def label_embeddings(self, kind: str = "emotion") -> torch.Tensor:
        """`(num_labels, projection_dim)` L2-normalised embeddings of every `kind` ("emotion"/"gender") label's
        prompt, in label-id order.

        Recomputed at every call in training mode; cached in evaluation mode (`GEmoClapPromptTable.embeddings`):
        after changing weights in place in evaluation mode, call `model.eval()` again.
        """
        return self.prompt_table.embeddings(kind, self._encode_prompts, self.text_projection.dense_in.weight)

    def _encode_prompts(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.get_text_features(input_ids, attention_mask, return_dict=True).pooler_output

    def rebuild_loss(self) -> None:
        """Build the loss (`GEmoClapLoss`) from the config's `loss_type`, `alpha_e`, `target_normalization` and
        `gender_labels`: done once by `__init__`; call it after changing any of them on a built model (forward
        refuses a loss that disagrees with the config). Re-labelling the emotions needs no rebuild."""
        self.loss_fn = GEmoClapLoss(**GEmoClapLoss.model_settings(self.config))

    def label_logits(self, audio_embeds: torch.Tensor, kind: str = "emotion") -> torch.Tensor:
        """`(N, num_labels)`: s_a · similarity of audio embeddings to every `kind` label's prompt, in id order.

        For callers that want both emotion and gender scores from one audio-tower pass (`get_audio_features`).
        """
        scale_audio, _ = self.logit_scales
        return scale_audio * audio_embeds @ self.label_embeddings(kind).to(audio_embeds.dtype).t()

    # ----- towers -----------------------------------------------------------------------------------------------

    def _frame_mask(self, audio_attention_mask: torch.Tensor, num_frames: int) -> torch.Tensor:
        # The encoder's own output-length formula, not an approximate ratio, so padding never shifts a clip's mean.
        lengths = self.audio_model._get_feat_extract_output_lengths(audio_attention_mask.sum(-1))
        return torch.arange(num_frames, device=lengths.device)[None, :] < lengths[:, None]

    @can_return_tuple
    def get_audio_features(
        self,
        input_values: torch.Tensor,
        audio_attention_mask: torch.Tensor | None = None,
        clip_index: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> BaseModelOutputWithPooling:
        """Audio embeddings, as transformers 5's `ClapModel.get_audio_features`.

        Returns a `BaseModelOutputWithPooling` whose `pooler_output` is the `(clips, projection_dim)` L2-normalised
        embedding (masked mean of the tower's last hidden state, projected); `last_hidden_state`, `hidden_states`
        (num_hidden_layers + 1 tensors) and `attentions` are the tower's. `output_hidden_states`/`output_attentions`
        default to the config (the model's, or the audio sub-config's); attentions need eager attention.

        With `clip_index` (rows are windows of long clips, as `GEmoClapFeatureExtractor` returns them) the windows
        are encoded `window_batch_size` at a time and averaged into one embedding per clip (`average_windows`), so
        `pooler_output` has one row per clip while the tower's outputs have one row per *window*, in input order,
        zero-padded past each chunk's longest window to the frames of the full input length. `last_hidden_state`
        is then returned only with hidden states or attentions (all windows' states would otherwise be kept for
        nothing: the memory bound is the point of the chunks).
        """
        if input_values.ndim != 2:
            raise ValueError(f"`input_values` must be (batch, samples), got shape {tuple(input_values.shape)}.")
        receptive_field = self.config.receptive_field
        if input_values.shape[-1] < receptive_field:
            raise ValueError(
                f"`input_values` has {input_values.shape[-1]} samples, fewer than the audio encoder's receptive field "
                f"({receptive_field}); pad clips with GEmoClapFeatureExtractor (it pads short clips) or pass longer "
                "audio."
            )
        flags = self._output_flags(self.config.audio_config, output_hidden_states, output_attentions)
        if clip_index is None:
            return self._embed_rows(input_values, audio_attention_mask, flags)
        return embed_windows(
            self._embed_rows,
            input_values,
            audio_attention_mask,
            clip_index,
            flags,
            window_batch_size=self.window_batch_size,
            receptive_field=receptive_field,
            output_frames=self.audio_model._get_feat_extract_output_lengths,
        )

    def _embed_rows(self, input_values, audio_attention_mask, flags: dict) -> BaseModelOutputWithPooling:
        if audio_attention_mask is not None:
            input_values, audio_attention_mask = _cover_receptive_field(
                input_values, audio_attention_mask, self.config.receptive_field
            )
        tower = self.audio_model(input_values, attention_mask=audio_attention_mask, **flags, return_dict=True)
        hidden = tower.last_hidden_state
        if audio_attention_mask is None:
            pooled = hidden.mean(dim=1)
        else:
            mask = self._frame_mask(audio_attention_mask, hidden.shape[1]).unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return BaseModelOutputWithPooling(
            last_hidden_state=hidden,
            pooler_output=nn.functional.normalize(self.audio_projection(pooled), dim=-1),
            hidden_states=tower.hidden_states,
            attentions=tower.attentions,
        )

    @can_return_tuple
    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> BaseModelOutputWithPooling:
        """Text embeddings, as transformers 5's `ClapModel.get_text_features`: `pooler_output` is the
        `(texts, projection_dim)` L2-normalised projection of the first token's last hidden state; the tower's
        `hidden_states`/`attentions` on request (default: the model's config, or the text sub-config's)."""
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        flags = self._output_flags(self.config.text_config, output_hidden_states, output_attentions)
        tower = self.text_model(input_ids=input_ids, attention_mask=attention_mask, **flags, return_dict=True, **extra)
        embeds = nn.functional.normalize(self.text_projection(tower.last_hidden_state[:, 0]), dim=-1)
        return BaseModelOutputWithPooling(
            last_hidden_state=tower.last_hidden_state,
            pooler_output=embeds,
            hidden_states=tower.hidden_states,
            attentions=tower.attentions,
        )

    # ----- forward ----------------------------------------------------------------------------------------------

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        audio_attention_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        emotion_labels: torch.Tensor | None = None,
        gender_labels: torch.Tensor | None = None,
        return_loss: bool | None = None,
        clip_index: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> GEmoClapOutput:
        """Embed audio and texts; with `emotion_labels` (and gender labels for SL/ML) also compute the loss.

        Without `input_ids` the texts are the emotion label prompts (the model's table), so `logits_per_audio` is
        `(N, num_emotions)` in `config.id2label` order; with `input_ids` (any texts, e.g. zero-shot candidates) it
        is `(N, T)`. The loss always uses the label tables indexed by the label ids (see `GEmoClapLoss`).
        `attention_mask` is the text mask; the audio mask is always `audio_attention_mask`. `clip_index` (from the
        feature extractor, for clips split into windows) gives one audio embedding per clip.
        `output_hidden_states`/`output_attentions` (default: the config's) fill the towers' outputs,
        `audio_model_output` and `text_model_output`. `return_dict=False` gives a tuple in the field order of
        `GEmoClapOutput`, without the None fields, the towers' outputs as tuples.
        """
        flags = {"output_hidden_states": output_hidden_states, "output_attentions": output_attentions}
        audio_output = self.get_audio_features(
            input_values, audio_attention_mask, clip_index, **flags, return_dict=True
        )
        audio_embeds = audio_output.pooler_output
        text_output = None
        if input_ids is not None:
            text_output = self.get_text_features(input_ids, attention_mask, token_type_ids, **flags, return_dict=True)
        elif any(self._output_flags(self.config.text_config, **flags).values()):  # the prompts' tower outputs
            text_output = self.get_text_features(*self._prompt_inputs("emotion"), **flags, return_dict=True)
        text_embeds = self.label_embeddings("emotion") if text_output is None else text_output.pooler_output
        scale_audio, scale_text = self.logit_scales
        logits_per_audio = scale_audio * audio_embeds @ text_embeds.t().to(audio_embeds.dtype)
        logits_per_text = scale_text * text_embeds.to(audio_embeds.dtype) @ audio_embeds.t()

        want_loss = emotion_labels is not None if return_loss is None else return_loss
        losses = None
        if want_loss:
            if emotion_labels is None:
                raise ValueError("`return_loss=True` needs `emotion_labels` (one emotion id per clip).")
            loss_fn = self.loss_fn.checked_against(self.config)
            emotion_table = text_embeds if input_ids is None else self.label_embeddings("emotion")
            gender_table = self.label_embeddings("gender") if self.config.loss_type == "ml" else None
            losses = loss_fn(
                audio_embeds, emotion_table, (scale_audio, scale_text), emotion_labels, gender_labels, gender_table
            )
        return GEmoClapOutput(
            loss=None if losses is None else losses.loss,
            logits_per_audio=logits_per_audio,
            logits_per_text=logits_per_text,
            audio_embeds=audio_embeds,
            text_embeds=text_embeds,
            emotion_loss=None if losses is None else losses.emotion_loss,
            gender_loss=None if losses is None else losses.gender_loss,
            audio_model_output=audio_output,
            text_model_output=text_output,
        )


@dataclass
class GEmoClapClassifierOutput(SequenceClassifierOutput):
    """What `GEmoClapForAudioClassification.forward` returns: the one scoring contract of the package (the pipelines,
    the inference engine, the ONNX export, the app and the bench all read it).

    Args:
        loss: `()` cross-entropy of `logits` against `labels`, when given.
        logits: `(clips, num_labels)` s_a-scaled similarities to each emotion prompt, in `config.id2label` order.
        gender_logits: `(clips, num_genders)` the same for the gender prompts; ML-GEmo-CLAP models only (None else).
        audio_embeds: `(clips, projection_dim)` the L2-normalised audio embeddings (windows averaged per clip).
        hidden_states, attentions: the audio tower's, on request.
    """

    gender_logits: torch.FloatTensor | None = None
    audio_embeds: torch.FloatTensor | None = None


class GEmoClapForAudioClassification(GEmoClapPreTrainedModel):
    """Emotion classification by similarity to every emotion label's prompt; inference costs one audio pass.

    The label-prompt embeddings come from the dual encoder's table (`GEmoClapModel.label_embeddings`), cached in
    evaluation mode and dropped at every `train()`/`eval()` call, so they never go stale whatever changed the weights.
    Classification trains the audio tower, both projections, the audio temperature and (through the label-prompt
    embeddings, recomputed at every training step) the text tower. The text temperature scales only text→audio
    logits, which classification never computes: it is frozen (`_unused_parameters`), so that every trainable
    parameter gets a gradient (DDP without `find_unused_parameters`) and the saved checkpoint keeps the dual
    encoder's trained value for `GEmoClapModel`.
    """

    _unused_parameters = ("gemo_clap.logit_scale_text",)

    def __init__(self, config: GEmoClapConfig):
        super().__init__(config)
        self.gemo_clap = GEmoClapModel(config)
        self.post_init()
        self._freeze_unused_parameters()

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
        """Tokenise the label prompts once (see `GEmoClapModel.set_prompts`)."""
        self.gemo_clap.set_prompts(tokenizer)

    @property
    def prompt_table(self) -> GEmoClapPromptTable:
        return self.gemo_clap.prompt_table

    @property
    def has_prompts(self) -> bool:
        return self.gemo_clap.has_prompts

    def label_embeddings(self, kind: str = "emotion") -> torch.Tensor:
        """See `GEmoClapModel.label_embeddings`."""
        return self.gemo_clap.label_embeddings(kind)

    def label_logits(self, audio_embeds: torch.Tensor, kind: str = "emotion") -> torch.Tensor:
        """See `GEmoClapModel.label_logits`: emotion and gender scores from one audio pass."""
        return self.gemo_clap.label_logits(audio_embeds, kind)

    @can_return_tuple
    def forward(
        self,
        input_values: torch.Tensor,
        audio_attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        clip_index: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> GEmoClapClassifierOutput:
        """Logits `(clips, num_labels)` = s_a · similarity to each emotion prompt, in `config.id2label` order;
        cross-entropy with `labels`.

        An audio-only model: `attention_mask` is accepted as the audio mask (the name
        `Wav2Vec2ForSequenceClassification` uses), as is `audio_attention_mask`. With `clip_index` (clips split into
        windows by the feature extractor) there is one row of logits per clip. `hidden_states`/`attentions` are the
        audio tower's (as `Wav2Vec2ForSequenceClassification` returns them), on request or when the config asks;
        per window row for windowed clips (see `GEmoClapModel.get_audio_features`).
        """
        audio_attention_mask = _one_audio_mask(audio_attention_mask, attention_mask)
        audio_output = self.gemo_clap.get_audio_features(
            input_values,
            audio_attention_mask,
            clip_index,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            return_dict=True,
        )
        audio_embeds = audio_output.pooler_output
        logits = self.label_logits(audio_embeds, "emotion")
        gender_logits = self.label_logits(audio_embeds, "gender") if self.config.loss_type == "ml" else None
        loss = None
        if labels is not None:
            _assert_label_range("labels", labels, len(self.config.emotion_labels))
            loss = nn.functional.cross_entropy(logits.float(), labels)
        return GEmoClapClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=audio_output.hidden_states,
            attentions=audio_output.attentions,
            gender_logits=gender_logits,
            audio_embeds=audio_embeds,
        )


def _one_audio_mask(audio_attention_mask: torch.Tensor | None, attention_mask: torch.Tensor | None):
    if attention_mask is None or audio_attention_mask is None or attention_mask is audio_attention_mask:
        return audio_attention_mask if audio_attention_mask is not None else attention_mask
    if attention_mask.shape != audio_attention_mask.shape or not torch.equal(attention_mask, audio_attention_mask):
        raise ValueError(
            "`attention_mask` and `audio_attention_mask` are both given and differ; for this audio-only model they "
            "name the same audio mask: pass one of them."
        )
    return audio_attention_mask


__all__ = [
    "GEmoClapModel",
    "GEmoClapForAudioClassification",
    "GEmoClapClassifierOutput",
    "GEmoClapOutput",
    "GEmoClapPreTrainedModel",
]
