"""Randomly initialised speech and text towers saved as ordinary pre-trained folders.

Where no pre-trained weights can be downloaded (CI, the embedded demo, benchmarks), these folders stand in for
`microsoft/wavlm-base-plus` and `roberta-base`: they go through exactly the same loading code
(`GEmoClapModel.from_audio_text_pretrained`, the training script's `--audio_encoder/--text_encoder`).
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoConfig, AutoModel

# Words every tokenizer made here must cover: the default emotion and gender labels and common prompt words.
PROMPT_WORDS = (
    "neutral happy sad angry excited frustrated calm fearful disgust surprised female male "
    "a an the person speaker speaking talking in with voice tone sounds is emotion"
).split()

# The wav2vec2-family CNN layout (receptive field 400 samples, stride 320), as in every released checkpoint.
CONV_KERNEL = (10, 3, 3, 3, 3, 2, 2)
CONV_STRIDE = (5, 2, 2, 2, 2, 2, 2)

SIZES = {
    # hidden, layers, heads, intermediate, conv channels
    "tiny": (32, 2, 2, 37, 16),
    "small": (96, 2, 4, 192, 64),
    "base": (768, 12, 12, 3072, 512),
}


def speech_tower_config(model_type: str = "wavlm", size: str = "small", **overrides):
    """A speech-encoder config of the given family and size, with dropout and SpecAugment off unless overridden."""
    hidden, layers, heads, intermediate, channels = SIZES[size]
    values = dict(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        conv_dim=(channels,) * len(CONV_KERNEL),
        conv_kernel=CONV_KERNEL,
        conv_stride=CONV_STRIDE,
        num_conv_pos_embeddings=16 if size != "base" else 128,
        num_conv_pos_embedding_groups=min(16, heads),
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        layerdrop=0.0,
        mask_time_prob=0.0,
    )
    if model_type == "wavlm":
        values.update(num_buckets=32 if size != "base" else 320, max_bucket_distance=200 if size != "base" else 800)
    values.update(overrides)
    return AutoConfig.for_model(model_type, **values)


def text_tower_config(model_type: str = "roberta", size: str = "small", vocab_size: int = 400, **overrides):
    hidden, layers, heads, intermediate, _ = SIZES[size]
    values = dict(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=64 if size != "base" else 514,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    values.update(overrides)
    return AutoConfig.for_model(model_type, **values)


def train_prompt_tokenizer(folder: Path, model_type: str = "roberta", extra_words: tuple[str, ...] = ()):
    """A tokenizer of the text tower's kind that covers the prompt words, saved to `folder`.

    RoBERTa gets a byte-level BPE trained on the words (so any text still tokenises); BERT a WordPiece vocabulary.
    """
    from transformers import BertTokenizer, RobertaTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    words = list(dict.fromkeys((*PROMPT_WORDS, *extra_words)))
    if model_type == "bert":
        (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
        tokenizer = BertTokenizer(vocab=str(folder / "vocab.txt"))
    else:
        from tokenizers import ByteLevelBPETokenizer

        bpe = ByteLevelBPETokenizer()
        bpe.train_from_iterator(
            [" ".join(words)] * 4, vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        )
        bpe.save_model(str(folder))
        tokenizer = RobertaTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))
    tokenizer.save_pretrained(folder)
    return tokenizer


def save_random_towers(
    out_dir: Path,
    audio_type: str = "wavlm",
    text_type: str = "roberta",
    size: str = "small",
    seed: int = 0,
    audio_overrides: dict | None = None,
    text_overrides: dict | None = None,
) -> tuple[Path, Path]:
    """Write `out_dir/audio` (a speech encoder) and `out_dir/text` (a text encoder + tokenizer); return both paths."""
    import torch

    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    audio_dir, text_dir = out_dir / "audio", out_dir / "text"
    tokenizer = train_prompt_tokenizer(text_dir, text_type)
    audio_config = speech_tower_config(audio_type, size, **(audio_overrides or {}))
    text_config = text_tower_config(text_type, size, vocab_size=len(tokenizer), **(text_overrides or {}))
    AutoModel.from_config(audio_config).save_pretrained(audio_dir)
    AutoModel.from_config(text_config).save_pretrained(text_dir)
    return audio_dir, text_dir


__all__ = ["save_random_towers", "speech_tower_config", "text_tower_config", "train_prompt_tokenizer", "SIZES"]
