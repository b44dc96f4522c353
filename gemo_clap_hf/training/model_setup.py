"""Build the GEmo-CLAP model and its processor from two pre-trained towers named by `ModelArguments`."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from transformers import AutoFeatureExtractor, AutoTokenizer

from ..feature_extraction_gemo_clap import GEmoClapFeatureExtractor
from ..modeling_gemo_clap import GEmoClapModel
from ..processing_gemo_clap import GEmoClapProcessor
from .arguments import ModelArguments

logger = logging.getLogger(__name__)


def _hub_kwargs(model_args: ModelArguments) -> dict:
    return {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision}


def build_model(model_args: ModelArguments, emotion_labels: Sequence[str], tokenizer=None) -> GEmoClapModel:
    """The dual encoder with new projections and temperatures, labelled with the corpus' emotions.

    `tokenizer` (the processor's) makes the label-prompt table when the text encoder's folder gave none."""
    tower_kwargs = {
        f"{tower}_{key}": value for tower in ("audio", "text") for key, value in _hub_kwargs(model_args).items()
    }
    tower_kwargs["audio_layerdrop"] = model_args.layerdrop  # a config override for the speech tower
    model = GEmoClapModel.from_audio_text_pretrained(
        model_args.audio_encoder,
        model_args.text_encoder,
        emotion_labels=tuple(emotion_labels),
        loss_type=model_args.loss_type,
        alpha_e=model_args.alpha_e,
        projection_dim=model_args.projection_dim,
        prompt_template=model_args.prompt_template,
        target_normalization=model_args.target_normalization,
        logit_scale_init_value=model_args.logit_scale_init_value,
        **tower_kwargs,
    )
    if tokenizer is not None and not model.has_prompts:
        model.set_prompts(tokenizer)
    if model_args.freeze_feature_encoder:
        model.freeze_feature_encoder()
    if model_args.freeze_text_embeddings:
        model.freeze_text_embeddings()
    return model


def _feature_extractor(model_args: ModelArguments) -> GEmoClapFeatureExtractor:
    """GEmo-CLAP's feature extractor with the speech encoder's own normalisation when it ships a preprocessor."""
    try:
        tower = AutoFeatureExtractor.from_pretrained(model_args.audio_encoder, **_hub_kwargs(model_args))
    except (OSError, ValueError):
        logger.info(f"{model_args.audio_encoder} has no preprocessor config; using GEmoClapFeatureExtractor defaults.")
        return GEmoClapFeatureExtractor()
    return GEmoClapFeatureExtractor(
        sampling_rate=tower.sampling_rate, do_normalize=getattr(tower, "do_normalize", True)
    )


def build_processor(model_args: ModelArguments) -> GEmoClapProcessor:
    """Feature extractor + the text encoder's tokenizer, saved beside the model so pipelines find both."""
    tokenizer = AutoTokenizer.from_pretrained(model_args.text_encoder, **_hub_kwargs(model_args))
    return GEmoClapProcessor(_feature_extractor(model_args), tokenizer)


__all__ = ["build_model", "build_processor"]
