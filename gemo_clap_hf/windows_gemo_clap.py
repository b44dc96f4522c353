"""Long clips split into windows (`clip_index`, from the feature extractor): encoded a chunk at a time, averaged
back into one embedding per clip.

Travels with saved models (`trust_remote_code`): imports only torch and transformers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPooling


def check_clip_index(clip_index: torch.Tensor, num_rows: int) -> int:
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
    num_clips = check_clip_index(clip_index, embeds.shape[0])
    weighted = embeds.float() * weights.to(device=embeds.device, dtype=torch.float32)[:, None]  # float32 under autocast
    sums = weighted.new_zeros((num_clips, embeds.shape[1])).index_add(0, clip_index, weighted)
    return nn.functional.normalize(sums, dim=-1).to(embeds.dtype)


def embed_windows(
    embed_rows: Callable[[torch.Tensor, torch.Tensor | None, dict], BaseModelOutputWithPooling],
    input_values: torch.Tensor,
    audio_attention_mask: torch.Tensor | None,
    clip_index: torch.Tensor,
    flags: dict,
    *,
    window_batch_size: int,
    receptive_field: int,
    output_frames: Callable[[int], int],
) -> BaseModelOutputWithPooling:
    """Encode windows `window_batch_size` at a time with `embed_rows(values, mask, flags)` (the memory bound), then
    average them per clip (`average_windows`).

    The tower's outputs (only when `flags` ask for hidden states or attentions) have one row per window, in input
    order, zero-padded past each chunk's longest window to `output_frames(input length)` frames.
    """
    step = max(1, int(window_batch_size))
    chunks = []
    for start in range(0, input_values.shape[0], step):
        values = input_values[start : start + step]
        mask = None if audio_attention_mask is None else audio_attention_mask[start : start + step]
        if mask is not None:  # drop the padding the whole batch shares but this chunk does not need
            length = max(int(mask.sum(-1).max()), receptive_field)
            values, mask = values[:, :length], mask[:, :length]
        chunks.append(embed_rows(values, mask, flags))
    lengths = (
        audio_attention_mask.sum(-1)
        if audio_attention_mask is not None
        else torch.full((input_values.shape[0],), input_values.shape[1], device=input_values.device)
    )
    embeds = average_windows(torch.cat([chunk.pooler_output for chunk in chunks]), clip_index, lengths)
    if not any(flags.values()):
        return BaseModelOutputWithPooling(pooler_output=embeds)
    frames = int(output_frames(input_values.shape[1]))
    return BaseModelOutputWithPooling(
        last_hidden_state=_stack_window_rows([(chunk.last_hidden_state,) for chunk in chunks], frames, (1,))[0],
        pooler_output=embeds,
        hidden_states=_stack_window_rows([chunk.hidden_states for chunk in chunks], frames, (1,)),
        attentions=_stack_window_rows([chunk.attentions for chunk in chunks], frames, (2, 3)),
    )


def _pad_frames(tensor: torch.Tensor, frames: int, dims: tuple[int, ...]) -> torch.Tensor:
    """Zero-pad `tensor` at the end of each of `dims` to `frames`."""
    pad = [0] * (2 * tensor.ndim)  # nn.functional.pad lists the last dimension first
    for dim in dims:
        pad[2 * (tensor.ndim - 1 - dim) + 1] = frames - tensor.shape[dim]
    return nn.functional.pad(tensor, pad)


def _stack_window_rows(per_chunk: list, frames: int, frame_dims: tuple[int, ...]) -> tuple | None:
    """Per-layer tensors of all window rows: each chunk's (cut to its longest window) zero-padded to `frames` along
    `frame_dims`, then concatenated in row order; None when the tower did not return them."""
    if per_chunk[0] is None:
        return None
    return tuple(torch.cat([_pad_frames(t, frames, frame_dims) for t in layer]) for layer in zip(*per_chunk))


__all__ = ["average_windows", "check_clip_index", "embed_windows"]
