"""Tiny randomly initialised towers, tokenizers and GEmo-CLAP checkpoints built in milliseconds, offline.

Shared by the tests (and the training tests), so that every test exercises the real loading code on folders
it saved itself; nothing here downloads anything.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gemo_clap_hf import GEmoClapConfig, GEmoClapFeatureExtractor, GEmoClapModel, GEmoClapProcessor
from gemo_clap_hf.demo.towers import (
    SPEECH_PRESETS,
    save_random_towers,
    speech_tower_config,
    text_tower_config,
    train_prompt_tokenizer,
)

# Every speech preset beside roberta-base, and bert-base-uncased beside one speech preset: the matrix of tower pairs
# on which the core invariants run (tests/model/test_presets_matrix.py).
PRESET_PAIRS = [(audio, "roberta-base") for audio in SPEECH_PRESETS] + [("hubert-base-ls960", "bert-base-uncased")]


def tiny_audio_config(model_type: str = "wavlm", **overrides):
    """A 2-layer speech encoder shaped like the real checkpoint of a preset or model type ("wavlm" is
    wavlm-base-plus: group-norm feature encoder, post-LN transformer, as the package's default encoder)."""
    return speech_tower_config(model_type, "tiny", **overrides)


def tiny_text_config(model_type: str = "roberta", vocab_size: int = 400, **overrides):
    """A 2-layer text encoder shaped like a preset or model type ("roberta" is roberta-base)."""
    return text_tower_config(model_type, "tiny", vocab_size=vocab_size, **overrides)


def save_tiny_towers(
    folder: Path, audio_preset: str = "wavlm-base-plus", text_preset: str = "roberta-base", seed: int = 0
) -> tuple[Path, Path]:
    """Tiny pre-trained-style tower folders (`folder/audio`, `folder/text` with pooler and tokenizer)."""
    return save_random_towers(folder, audio_preset, text_preset, size="tiny", seed=seed)


def make_roberta_tokenizer(folder: Path):
    return train_prompt_tokenizer(folder, "roberta")


def make_bert_tokenizer(folder: Path):
    return train_prompt_tokenizer(folder, "bert")


def tiny_config(
    audio_type: str = "wavlm", text_type: str = "roberta", audio_overrides: dict | None = None, **kwargs
) -> GEmoClapConfig:
    kwargs.setdefault("projection_dim", 16)
    return GEmoClapConfig(
        audio_config=tiny_audio_config(audio_type, **(audio_overrides or {})).to_dict(),
        text_config=tiny_text_config(text_type).to_dict(),
        **kwargs,
    )


def tiny_processor(folder: Path, text_type: str = "roberta") -> GEmoClapProcessor:
    tokenizer = train_prompt_tokenizer(Path(folder) / "tokenizer", text_type)  # a preset name or a model type
    return GEmoClapProcessor(GEmoClapFeatureExtractor(), tokenizer)


def save_tiny_checkpoint(folder: Path, seed: int = 0, **config_kwargs) -> Path:
    """A complete GEmo-CLAP folder (config, safetensors weights, processor) as training would write it."""
    import torch

    folder = Path(folder)
    torch.manual_seed(seed)
    model = GEmoClapModel(tiny_config(**config_kwargs))
    text_type = config_kwargs.get("text_type", "roberta")
    processor = tiny_processor(folder.parent / f"{folder.name}_tokenizer_src", text_type)
    model.set_prompts(processor.tokenizer)  # as the Trainer does: the prompts' token ids are saved in config.json
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


def auto_map_references(folder: Path) -> list[tuple[str, str]]:
    """(json file, reference) for every `auto_map` entry in the JSON files of `folder`, nested ones included
    (processor_config.json holds the feature extractor's), references to other repositories left out."""

    def entries(value):
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "auto_map":
                    for reference in item.values():
                        yield from reference if isinstance(reference, list) else [reference]
                else:
                    yield from entries(item)
        elif isinstance(value, list):
            for item in value:
                yield from entries(item)

    return [
        (path.name, reference)
        for path in sorted(Path(folder).glob("*.json"))
        for reference in entries(json.loads(path.read_text()))
        if reference and "--" not in reference
    ]


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
