"""The Emo-CLAP, SL-GEmo-CLAP and ML-GEmo-CLAP losses as pure functions, plus the cross-process gather.

Kept outside the model (as open_clip does) so that the losses can be tested against the formulas on their own.
Travels with saved models (`trust_remote_code`): imports only torch.

Notation (N utterances in the global batch): A, T are N×d L2-normalised audio and text embeddings, e and g the
emotion and gender ids, C_a = s_a·A·Tᵀ and C_t = s_t·T·Aᵀ the scaled similarities, M_e / M_g the same-emotion /
same-gender indicator matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOSS_TYPES = ("emo", "sl", "ml")


@dataclass
class GEmoClapLossOutput:
    """The total loss and its parts (`gender_loss` only for ML-GEmo-CLAP)."""

    loss: torch.Tensor
    emotion_loss: torch.Tensor
    gender_loss: torch.Tensor | None = None


def same_label_matrix(labels: torch.Tensor) -> torch.Tensor:
    """M[i, j] = 1 if labels[i] == labels[j] else 0: every same-label pair is a positive, not only the diagonal."""
    return (labels[:, None] == labels[None, :]).float()


def target_distribution(positives: torch.Tensor, normalization: str = "sum") -> torch.Tensor:
    """Turn each row of a (soft) positive-pair matrix into a probability distribution."""
    if normalization == "sum":
        return positives / positives.sum(dim=-1, keepdim=True)
    if normalization == "softmax":
        return positives.softmax(dim=-1)
    raise ValueError(f"`target_normalization` must be 'sum' or 'softmax', got {normalization!r}.")


def kl_to_target(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over rows i of KL(target_i ‖ softmax(logits_i)), with 0·log 0 = 0.

    `F.kl_div` with `reduction="batchmean"` computes exactly this (sum over the row, mean over rows).
    """
    log_probs = F.log_softmax(logits.float(), dim=-1)
    return F.kl_div(log_probs, target.float(), reduction="batchmean")


def symmetric_kl(logits_per_audio: torch.Tensor, logits_per_text: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """½ (KL(target, C_a) + KL(target, C_t)); the targets used here are symmetric, so one serves both directions."""
    return 0.5 * (kl_to_target(logits_per_audio, target) + kl_to_target(logits_per_text, target))


def _check_batch(audio_embeds: torch.Tensor, text_embeds: torch.Tensor, labels: dict[str, torch.Tensor | None]) -> None:
    size = audio_embeds.shape[0]
    if audio_embeds.ndim != 2 or text_embeds.ndim != 2:
        raise ValueError("audio and text embeddings must be 2-D (batch, dim).")
    if text_embeds.shape[0] != size:
        raise ValueError(
            f"the batch has {size} audio clips but {text_embeds.shape[0]} texts; pass one label prompt per clip."
        )
    for name, value in labels.items():
        if value is not None and value.shape != (size,):
            raise ValueError(
                f"`{name}` has shape {tuple(value.shape)} but the batch has {size} clips; pass one label id per clip."
            )


def gemo_clap_loss(
    audio_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    emotion_labels: torch.Tensor,
    logit_scale_audio: torch.Tensor,
    logit_scale_text: torch.Tensor,
    loss_type: str = "sl",
    alpha_e: float = 0.9,
    gender_labels: torch.Tensor | None = None,
    gender_text_embeds: torch.Tensor | None = None,
    target_normalization: str = "sum",
) -> GEmoClapLossOutput:
    """The configured GEmo-CLAP loss over the batch given (gather first for the global batch).

    Args:
        audio_embeds, text_embeds: N×d normalised embeddings; text row i is utterance i's emotion prompt.
        emotion_labels, gender_labels: N label ids (gender needed for "sl" and "ml").
        logit_scale_audio, logit_scale_text: the temperatures s_a, s_t (already exp'd and clamped).
        loss_type: "emo" L = ½(KL(M_e,C_a)+KL(M_e,C_t)); "sl" the same with M_s = α_e·M_e + (1−α_e)·M_g;
            "ml" L = α_e·L_emo + (1−α_e)·L_g, L_g on C'_a = s_a·A·Gᵀ with G the gender-prompt embeddings.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"`loss_type` must be one of {LOSS_TYPES}, got {loss_type!r}.")
    if not 0.0 <= alpha_e <= 1.0:
        raise ValueError(f"`alpha_e` must be in [0, 1], got {alpha_e!r}.")
    _check_batch(audio_embeds, text_embeds, {"emotion_labels": emotion_labels, "gender_labels": gender_labels})
    if loss_type in ("sl", "ml") and gender_labels is None:
        raise ValueError(f"loss_type={loss_type!r} needs `gender_labels` (one gender id per clip).")

    logits_per_audio = logit_scale_audio * audio_embeds @ text_embeds.t()
    logits_per_text = logit_scale_text * text_embeds @ audio_embeds.t()
    emotion_positives = same_label_matrix(emotion_labels)

    if loss_type == "sl":
        soft_positives = alpha_e * emotion_positives + (1.0 - alpha_e) * same_label_matrix(gender_labels)
        loss = symmetric_kl(logits_per_audio, logits_per_text, target_distribution(soft_positives, target_normalization))
        return GEmoClapLossOutput(loss=loss, emotion_loss=loss)

    emotion_loss = symmetric_kl(
        logits_per_audio, logits_per_text, target_distribution(emotion_positives, target_normalization)
    )
    if loss_type == "emo":
        return GEmoClapLossOutput(loss=emotion_loss, emotion_loss=emotion_loss)

    if gender_text_embeds is None:
        raise ValueError("loss_type='ml' needs the gender-prompt embeddings (`gender_input_ids` in the model inputs).")
    _check_batch(audio_embeds, gender_text_embeds, {})
    gender_target = target_distribution(same_label_matrix(gender_labels), target_normalization)
    gender_loss = symmetric_kl(
        logit_scale_audio * audio_embeds @ gender_text_embeds.t(),
        logit_scale_text * gender_text_embeds @ audio_embeds.t(),
        gender_target,
    )
    loss = alpha_e * emotion_loss + (1.0 - alpha_e) * gender_loss
    return GEmoClapLossOutput(loss=loss, emotion_loss=emotion_loss, gender_loss=gender_loss)


def _world_size() -> int:
    distributed = torch.distributed
    if distributed.is_available() and distributed.is_initialized():
        return distributed.get_world_size()
    return 1


def _all_gather_padded(tensor: torch.Tensor, with_grad: bool) -> torch.Tensor:
    """Concatenate `tensor` from every process along dim 0, allowing different batch sizes per process.

    With `with_grad`, uses `torch.distributed.nn.all_gather`, whose backward sums the gradients of every process
    into the local slice: each process then holds W·∂L/∂(local) and DDP's gradient averaging yields exactly the
    gradient of the global-batch loss (open_clip's `gather_with_grad`).
    """
    distributed = torch.distributed
    size = torch.tensor([tensor.shape[0]], device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(distributed.get_world_size())]
    distributed.all_gather(sizes, size)
    sizes = [int(s.item()) for s in sizes]
    padded = tensor
    if max(sizes) != tensor.shape[0]:
        padding = tensor.new_zeros((max(sizes) - tensor.shape[0], *tensor.shape[1:]))
        padded = torch.cat([tensor, padding])
    if with_grad:
        from torch.distributed.nn.functional import all_gather as all_gather_with_grad

        gathered = list(all_gather_with_grad(padded))
    else:
        gathered = [torch.empty_like(padded) for _ in sizes]
        distributed.all_gather(gathered, padded.contiguous())
    return torch.cat([part[:count] for part, count in zip(gathered, sizes)])


def gather_across_processes(**tensors: torch.Tensor | None) -> dict[str, torch.Tensor | None]:
    """All-gather embeddings (with gradient) and labels (without) so that every process sees the global batch.

    A no-op outside `torch.distributed` (one process), so the model calls it unconditionally.
    """
    if _world_size() == 1:
        return dict(tensors)
    return {
        name: None if value is None else _all_gather_padded(value, with_grad=value.is_floating_point())
        for name, value in tensors.items()
    }


__all__ = [
    "GEmoClapLossOutput",
    "gemo_clap_loss",
    "gather_across_processes",
    "same_label_matrix",
    "target_distribution",
    "kl_to_target",
]
