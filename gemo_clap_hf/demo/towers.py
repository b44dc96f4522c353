"""Randomly initialised speech and text towers, shaped like the real checkpoints, saved as pre-trained folders.

Where no pre-trained weights can be downloaded (CI, the embedded demo, benchmarks), these folders stand in for
the Hub checkpoints: they go through exactly the same loading code (`GEmoClapModel.from_audio_text_pretrained`,
the training script's `--audio_encoder/--text_encoder`).

Each preset is named for a real checkpoint and copies its *structure* from that checkpoint's `config.json`: the
feature encoder's norm (`feat_extract_norm`: GroupNorm on the first conv layer, or LayerNorm on every one),
`do_stable_layer_norm` (pre- or post-LN transformer), conv bias, the CNN's kernel/stride layout, the positional
convolution (one grouped conv with an even kernel, or data2vec-audio's stack of five), HuBERT's feature-projection
LayerNorm, WavLM's relative position buckets, RoBERTa's single token type and offset positions, the activations and
LayerNorm epsilons. `AutoModel` builds the text towers with their pooler, as the real checkpoints hold one.
Only sizes shrink (`size="tiny"`: hidden 32, `"small"`: hidden 96, 2 layers each; `"full"`: the checkpoint's own
dimensions). Dropout, LayerDrop and SpecAugment are off unless overridden, so that the tests are deterministic:
those are training-time regularisation, not structure (with `mask_time_prob=0` the towers also hold no
`masked_spec_embed`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from transformers import AutoConfig, AutoModel

# Words every tokenizer made here must cover: the default emotion and gender labels and common prompt words.
PROMPT_WORDS = [
    "neutral",
    "happy",
    "sad",
    "angry",
    "excited",
    "frustrated",
    "calm",
    "fearful",
    "disgust",
    "surprised",
    "female",
    "male",
    "a",
    "an",
    "the",
    "person",
    "speaker",
    "speaking",
    "talking",
    "in",
    "with",
    "voice",
    "tone",
    "sounds",
    "is",
    "emotion",
]

# The wav2vec2-family CNN layout (receptive field 400 samples, stride 320), as in every released checkpoint.
CONV_KERNEL = (10, 3, 3, 3, 3, 2, 2)
CONV_STRIDE = (5, 2, 2, 2, 2, 2, 2)


@dataclasses.dataclass(frozen=True)
class TowerPreset:
    """One real checkpoint's structure (kept at every size) and its own dimensions (used at `size="full"`)."""

    name: str
    model_type: str
    kind: str  # "speech" or "text"
    structure: dict
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    vocab_size: int | None = None  # text towers


# Shared by every wav2vec2-family checkpoint below (their config.json files agree on these).
_SPEECH_COMMON = dict(
    conv_kernel=CONV_KERNEL,
    conv_stride=CONV_STRIDE,
    conv_bias=False,
    feat_extract_activation="gelu",
    hidden_act="gelu",
    layer_norm_eps=1e-5,
    num_conv_pos_embedding_groups=16,
)
_GROUP_NORM = dict(feat_extract_norm="group", do_stable_layer_norm=False)  # GroupNorm on conv 0, post-LN encoder
_LAYER_NORM = dict(feat_extract_norm="layer", do_stable_layer_norm=True)  # LayerNorm on every conv, pre-LN encoder

PRESETS: dict[str, TowerPreset] = {
    preset.name: preset
    for preset in (
        TowerPreset("wavlm-base-plus", "wavlm", "speech", {**_SPEECH_COMMON, **_GROUP_NORM}),
        TowerPreset("wavlm-large", "wavlm", "speech", {**_SPEECH_COMMON, **_LAYER_NORM}, 1024, 24, 16, 4096),
        TowerPreset(
            "hubert-base-ls960",
            "hubert",
            "speech",
            {**_SPEECH_COMMON, **_GROUP_NORM, "feat_proj_layer_norm": True, "conv_pos_batch_norm": False},
        ),
        TowerPreset("wav2vec2-base", "wav2vec2", "speech", {**_SPEECH_COMMON, **_GROUP_NORM}),
        # data2vec-audio has no feat_extract_norm switch: LayerNorm on every conv layer and a post-LN encoder, with a
        # positional embedding of 5 stacked convs (kernel 19, each followed by a LayerNorm without affine and GELU).
        TowerPreset(
            "data2vec-audio-base",
            "data2vec-audio",
            "speech",
            {**_SPEECH_COMMON, "num_conv_pos_embeddings": 5, "conv_pos_kernel_size": 19},
        ),
        # RoBERTa: one token type, positions offset by padding_idx + 1 (514 = 512 + 2), LayerNorm eps 1e-5.
        TowerPreset(
            "roberta-base",
            "roberta",
            "text",
            {
                "type_vocab_size": 1,
                "layer_norm_eps": 1e-5,
                "hidden_act": "gelu",
                "pad_token_id": 1,
                "bos_token_id": 0,
                "eos_token_id": 2,
            },
            vocab_size=50265,
        ),
        TowerPreset(
            "bert-base-uncased",
            "bert",
            "text",
            {"type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu", "pad_token_id": 0},
            vocab_size=30522,
        ),
    )
}
SPEECH_PRESETS = tuple(name for name, preset in PRESETS.items() if preset.kind == "speech")
TEXT_PRESETS = tuple(name for name, preset in PRESETS.items() if preset.kind == "text")

# What a bare model type means: the family's base checkpoint (the package's default encoder for "wavlm").
FAMILY_PRESETS = {
    "wavlm": "wavlm-base-plus",
    "hubert": "hubert-base-ls960",
    "wav2vec2": "wav2vec2-base",
    "data2vec-audio": "data2vec-audio-base",
    "roberta": "roberta-base",
    "bert": "bert-base-uncased",
}

SIZES = {
    # Shrunk dimensions; the positional conv's kernel (wav2vec2/WavLM/HuBERT: 128, even) and WavLM's relative
    # position buckets (320 over 800 frames) shrink with them. "full" is each preset's own checkpoint size.
    "tiny": dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        conv_channels=16,
        pos_conv_kernel=16,
        num_buckets=32,
        max_bucket_distance=200,
        max_text_positions=64,
    ),
    "small": dict(
        hidden_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=192,
        conv_channels=64,
        pos_conv_kernel=16,
        num_buckets=32,
        max_bucket_distance=200,
        max_text_positions=64,
    ),
}
FULL_SIZES = ("full", "base")  # "base" is the former name of the full size (all default presets are base models)

_NO_SPEECH_REGULARISATION = dict(
    hidden_dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    feat_proj_dropout=0.0,
    layerdrop=0.0,
    mask_time_prob=0.0,
    mask_feature_prob=0.0,
)
_NO_TEXT_REGULARISATION = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def get_preset(name_or_model_type: str, kind: str | None = None) -> TowerPreset:
    """The preset called `name_or_model_type`, or the base preset of that model type ("wavlm" -> wavlm-base-plus)."""
    name = FAMILY_PRESETS.get(name_or_model_type, name_or_model_type)
    preset = PRESETS.get(name)
    if preset is None or (kind is not None and preset.kind != kind):
        names = [n for n, p in PRESETS.items() if kind is None or p.kind == kind]
        types = [t for t, n in FAMILY_PRESETS.items() if n in names]
        raise ValueError(f"no {kind or 'tower'} preset {name_or_model_type!r}; presets: {names}, model types: {types}")
    return preset


def _dimensions(preset: TowerPreset, size: str) -> dict:
    if size in FULL_SIZES:
        return dict(
            hidden_size=preset.hidden_size,
            num_hidden_layers=preset.num_hidden_layers,
            num_attention_heads=preset.num_attention_heads,
            intermediate_size=preset.intermediate_size,
        )
    if size not in SIZES:
        raise ValueError(f"size must be one of {[*SIZES, *FULL_SIZES]}, not {size!r}")
    return {
        key: SIZES[size][key]
        for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
    }


def speech_tower_config(preset: str = "wavlm-base-plus", size: str = "small", **overrides):
    """The config of a speech encoder with `preset`'s structure (a preset name or a model type) at `size`."""
    spec = get_preset(preset, "speech")
    full = size in FULL_SIZES
    values = {**spec.structure, **_dimensions(spec, size), **_NO_SPEECH_REGULARISATION}
    values["conv_dim"] = (512 if full else SIZES[size]["conv_channels"],) * len(CONV_KERNEL)
    if spec.model_type != "data2vec-audio":  # data2vec keeps its 5 layers of kernel 19: already small
        values["num_conv_pos_embeddings"] = 128 if full else SIZES[size]["pos_conv_kernel"]
    if spec.model_type == "wavlm":
        values["num_buckets"] = 320 if full else SIZES[size]["num_buckets"]
        values["max_bucket_distance"] = 800 if full else SIZES[size]["max_bucket_distance"]
    values.update(overrides)
    return AutoConfig.for_model(spec.model_type, **values)


def text_tower_config(preset: str = "roberta-base", size: str = "small", vocab_size: int | None = None, **overrides):
    """The config of a text encoder with `preset`'s structure at `size`; `vocab_size` defaults to 400 when shrunk
    (the prompt tokenizers made here are smaller) and to the checkpoint's own at full size."""
    spec = get_preset(preset, "text")
    full = size in FULL_SIZES
    positions = 512 if full else SIZES[size]["max_text_positions"]
    if spec.model_type == "roberta":
        positions += spec.structure["pad_token_id"] + 1  # RoBERTa's positions start after padding_idx (514 = 512 + 2)
    values = {
        **spec.structure,
        **_dimensions(spec, size),
        **_NO_TEXT_REGULARISATION,
        "vocab_size": vocab_size or (spec.vocab_size if full else 400),
        "max_position_embeddings": positions,
    }
    values.update(overrides)
    return AutoConfig.for_model(spec.model_type, **values)


def train_prompt_tokenizer(folder: Path, model_type: str = "roberta", extra_words: tuple[str, ...] = ()):
    """A tokenizer of the text tower's kind (a preset name or model type) that covers the prompt words, saved to
    `folder`.

    RoBERTa gets a byte-level BPE (any text still tokenises) that splits `PROMPT_WORDS` exactly as roberta-base
    does, so the label-prompt table has the real checkpoint's token counts ("neutral" is one token, "angry" two):
    they set what the text tower costs per step. BERT gets a WordPiece vocabulary of whole words (plus
    `extra_words`).
    """
    from transformers import BertTokenizer, RobertaTokenizer

    model_type = PRESETS[model_type].model_type if model_type in PRESETS else model_type
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if model_type == "bert":
        words = list(dict.fromkeys((*PROMPT_WORDS, *extra_words)))
        (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
        tokenizer = BertTokenizer(vocab=str(folder / "vocab.txt"))
    else:
        _write_roberta_prompt_bpe(folder)
        tokenizer = RobertaTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))
    tokenizer.save_pretrained(folder)
    return tokenizer


def _write_roberta_prompt_bpe(folder: Path) -> None:
    """`vocab.json` and `merges.txt` of a byte-level BPE holding the part of RoBERTa's merges that `PROMPT_WORDS`
    use (with and without a leading space), in RoBERTa's order.

    `roberta_prompt_merges.txt` lists the merges that GPT-2's byte-level BPE (whose merges RoBERTa shares; ranks
    from openai-whisper's `assets/gpt2.tiktoken`) applies to those words, sorted by rank. BPE picks the
    lowest-ranked pair present at each step, so this subset splits the words exactly as the full table does.
    Written by hand rather than loaded because the Hub, and so roberta-base's tokenizer, cannot be reached here.
    """
    import json

    from tokenizers.pre_tokenizers import ByteLevel

    merges = Path(__file__).with_name("roberta_prompt_merges.txt").read_text().splitlines()[1:]
    symbols = ["<s>", "<pad>", "</s>", "<unk>", *sorted(ByteLevel.alphabet())]
    symbols += [merge.replace(" ", "") for merge in merges] + ["<mask>"]  # each merge's result is a token
    (folder / "vocab.json").write_text(json.dumps({symbol: index for index, symbol in enumerate(symbols)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def save_random_towers(
    out_dir: Path,
    audio_preset: str = "wavlm-base-plus",
    text_preset: str = "roberta-base",
    size: str = "small",
    seed: int = 0,
    audio_overrides: dict | None = None,
    text_overrides: dict | None = None,
    *,
    audio_type: str | None = None,
    text_type: str | None = None,
) -> tuple[Path, Path]:
    """Write `out_dir/audio` (a speech encoder) and `out_dir/text` (a text encoder with its pooler, + tokenizer);
    return both paths. Presets are named as in `PRESETS` or by model type (`audio_type`/`text_type` are the former
    keyword names of `audio_preset`/`text_preset`)."""
    import torch

    audio_preset, text_preset = audio_type or audio_preset, text_type or text_preset
    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    audio_dir, text_dir = out_dir / "audio", out_dir / "text"
    tokenizer = train_prompt_tokenizer(text_dir, get_preset(text_preset, "text").model_type)
    audio_config = speech_tower_config(audio_preset, size, **(audio_overrides or {}))
    text_overrides = {"vocab_size": len(tokenizer), **(text_overrides or {})}  # a larger vocabulary may be asked for
    text_config = text_tower_config(text_preset, size, **text_overrides)
    AutoModel.from_config(audio_config).save_pretrained(audio_dir)
    AutoModel.from_config(text_config).save_pretrained(text_dir)
    return audio_dir, text_dir


__all__ = [
    "FAMILY_PRESETS",
    "PRESETS",
    "SIZES",
    "SPEECH_PRESETS",
    "TEXT_PRESETS",
    "TowerPreset",
    "get_preset",
    "save_random_towers",
    "speech_tower_config",
    "text_tower_config",
    "train_prompt_tokenizer",
]
