"""Tiny randomly initialised towers, tokenizers and GEmo-CLAP checkpoints built in milliseconds, offline.

Shared by the tests (and the training tests), so that every test exercises the real loading code on folders
it saved itself; nothing here downloads anything.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tokenizers import ByteLevelBPETokenizer
from transformers import AutoConfig, BertTokenizer, RobertaTokenizer

from gemo_clap_hf import GEmoClapConfig, GEmoClapFeatureExtractor, GEmoClapModel, GEmoClapProcessor

PROMPT_WORDS = ["neutral", "happy", "sad", "angry", "female", "male", "a", "person", "speaking", "in", "voice"]
# The real wav2vec2-family CNN layout (receptive field 400 samples, stride 320) with narrow channels.
CONV_LAYOUT = {"conv_kernel": (10, 3, 3, 3, 3, 2, 2), "conv_stride": (5, 2, 2, 2, 2, 2, 2), "conv_dim": (16,) * 7}


def tiny_audio_config(model_type: str = "wavlm", **overrides):
    """A 2-layer speech encoder with layer-norm feature extraction (it honours attention masks)."""
    values = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        layerdrop=0.0,
        mask_time_prob=0.0,
        **CONV_LAYOUT,
    )
    if model_type == "wavlm":
        values["num_buckets"] = 16
        values["max_bucket_distance"] = 64
    values.update(overrides)
    return AutoConfig.for_model(model_type, **values)


def tiny_text_config(model_type: str = "roberta", vocab_size: int = 300, **overrides):
    values = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    values.update(overrides)
    return AutoConfig.for_model(model_type, **values)


def make_roberta_tokenizer(folder: Path) -> RobertaTokenizer:
    """A byte-level BPE tokenizer trained on the prompt words, saved as a RoBERTa tokenizer."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        [" ".join(PROMPT_WORDS)] * 4, vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    bpe.save_model(str(folder))
    return RobertaTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))


def make_bert_tokenizer(folder: Path) -> BertTokenizer:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *PROMPT_WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return BertTokenizer(vocab=str(folder / "vocab.txt"))


def tiny_config(audio_type: str = "wavlm", text_type: str = "roberta", **kwargs) -> GEmoClapConfig:
    kwargs.setdefault("projection_dim", 16)
    return GEmoClapConfig(
        audio_config=tiny_audio_config(audio_type).to_dict(), text_config=tiny_text_config(text_type).to_dict(), **kwargs
    )


def tiny_processor(folder: Path, text_type: str = "roberta") -> GEmoClapProcessor:
    tokenizer = (make_roberta_tokenizer if text_type == "roberta" else make_bert_tokenizer)(Path(folder) / "tokenizer")
    return GEmoClapProcessor(GEmoClapFeatureExtractor(), tokenizer)


def save_tiny_checkpoint(folder: Path, seed: int = 0, **config_kwargs) -> Path:
    """A complete GEmo-CLAP folder (config, safetensors weights, processor) as training would write it."""
    import torch

    folder = Path(folder)
    torch.manual_seed(seed)
    model = GEmoClapModel(tiny_config(**config_kwargs))
    processor = tiny_processor(folder.parent / f"{folder.name}_tokenizer_src")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def random_clip(seconds: float, sampling_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A voiced-ish test clip: a few harmonics plus noise, float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sampling_rate)) / sampling_rate
    f0 = rng.uniform(100, 250)
    clip = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) + 0.1 * rng.standard_normal(t.shape)
    return (0.3 * clip / np.abs(clip).max()).astype(np.float32)


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
