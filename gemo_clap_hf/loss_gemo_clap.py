"""The Emo-CLAP, SL-GEmo-CLAP and ML-GEmo-CLAP losses: `GEmoClapLoss`, configured once, tensors in, named terms out.

Kept outside the model (as open_clip's `ClipLoss` is): `GEmoClapLoss.from_config(config)` builds it, its `forward`
gathers the batch across processes and applies the formulas, which are also plain functions (`gemo_clap_loss`) so
that tests can check them against a loop reference. Travels with saved models (`trust_remote_code`): imports only
torch.

Notation (N utterances in the global batch): A, T are N×d L2-normalised audio and text embeddings, e and g the
emotion and gender ids, C_a = s_a·A·Tᵀ and C_t = s_t·T·Aᵀ the scaled similarities, M_e / M_g the same-emotion /
same-gender indicator matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LOSS_TYPES = ("emo", "sl", "ml")
TARGET_NORMALIZATIONS = ("sum", "softmax")


@dataclass
class GEmoClapLossOutput:
    """The total loss and its named terms.

    `emotion_loss`: the emotion contrastive term (Emo-CLAP: the whole loss; ML: L_emo; SL: None, since its one
    target matrix mixes emotion and gender and has no separate emotion term). `gender_loss`: ML's L_g, else None.
    """

    loss: torch.Tensor
    emotion_loss: torch.Tensor | None = None
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
    _check_label_shapes(size, labels)


def _check_label_shapes(size: int, labels: dict[str, torch.Tensor | None]) -> None:
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
        loss = symmetric_kl(
            logits_per_audio, logits_per_text, target_distribution(soft_positives, target_normalization)
        )
        return GEmoClapLossOutput(loss=loss)

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


_HOST_GROUPS: dict = {}


def _host_group():
    """A process group whose collectives run on the host (gloo), for metadata such as batch sizes.

    Reading a value exchanged through NCCL makes the host wait for the device (a sync each step). The default group
    serves when its backend handles CPU tensors (gloo, or torch's default "cpu:gloo,cuda:nccl"); otherwise a gloo
    group over the same ranks is made once. Making a group is collective: every process reaches the first gather
    at the same point of the same step.
    """
    distributed = torch.distributed
    if "gloo" in str(distributed.get_backend()) or not distributed.is_gloo_available():
        return None
    world = distributed.group.WORLD
    if world not in _HOST_GROUPS:
        _HOST_GROUPS[world] = distributed.new_group(backend="gloo")
    return _HOST_GROUPS[world]


def exchange_batch_sizes(local_size: int) -> list[int]:
    """Every process's batch size (the last batch may be smaller on some), exchanged in host memory: no sync."""
    distributed = torch.distributed
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(distributed.get_world_size())]
    distributed.all_gather(sizes, torch.tensor([local_size], dtype=torch.int64), group=_host_group())
    return [int(size) for size in torch.cat(sizes).numpy()]  # host tensors: reading them waits for no device


def _all_gather_padded(tensor: torch.Tensor, sizes: list[int], with_grad: bool) -> torch.Tensor:
    """Concatenate `tensor` from every process along dim 0, process r holding `sizes[r]` rows.

    With `with_grad`, uses `torch.distributed.nn.all_gather`, whose backward sums the gradients of every process
    into the local slice: each process then holds W·∂L/∂(local) and DDP's gradient averaging yields exactly the
    gradient of the global-batch loss (open_clip's `gather_with_grad`).
    """
    distributed = torch.distributed
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

    The tensors share their first dimension (the local batch). A no-op outside `torch.distributed` (one process).
    """
    if _world_size() == 1:
        return dict(tensors)
    rows = {value.shape[0] for value in tensors.values() if value is not None}
    if len(rows) != 1:
        raise ValueError(f"the tensors to gather must share their batch size, got {sorted(rows)} rows.")
    sizes = exchange_batch_sizes(rows.pop())
    return {
        name: None if value is None else _all_gather_padded(value, sizes, with_grad=value.is_floating_point())
        for name, value in tensors.items()
    }


def _assert_label_range(name: str, labels: torch.Tensor, num_classes: int) -> None:
    """Fail on ids outside 0..num_classes-1 without a host sync (`torch._assert_async`: immediate on the CPU,
    a device-side assert on CUDA). The collator checks label names on the CPU first, with the row named."""
    in_range = ((labels >= 0) & (labels < num_classes)).all()
    torch._assert_async(
        in_range,
        f"`{name}` holds ids outside 0..{num_classes - 1}; map labels with `config.label2id` "
        "(or extend `emotion_labels`/`gender_labels` in the config).",
    )


class GEmoClapLoss(nn.Module):
    """The configured GEmo-CLAP loss over the global batch, from label-prompt tables.

    The text of utterance i is the prompt of its label, so the text tower only encodes the table of label prompts
    (one row per label, the same shape every step) and row i of T is `emotion_text_embeds[emotion_labels[i]]`: the
    same loss as encoding one prompt per utterance, at a fraction of the text cost and with no data-dependent shapes.
    Under `torch.distributed` the audio embeddings (with gradient) and labels are all-gathered; the tables are the
    same on every process (replicated weights), so each process computes the global-batch loss.
    """

    def __init__(
        self,
        loss_type: str = "sl",
        alpha_e: float = 0.9,
        target_normalization: str = "sum",
        num_emotions: int | None = None,
        num_genders: int | None = None,
    ):
        super().__init__()
        if loss_type not in LOSS_TYPES:
            raise ValueError(f"`loss_type` must be one of {LOSS_TYPES}, got {loss_type!r}.")
        if target_normalization not in TARGET_NORMALIZATIONS:
            raise ValueError(
                f"`target_normalization` must be one of {TARGET_NORMALIZATIONS}, got {target_normalization!r}."
            )
        self.loss_type, self.alpha_e, self.target_normalization = loss_type, float(alpha_e), target_normalization
        self.num_emotions, self.num_genders = num_emotions, num_genders

    @classmethod
    def from_config(cls, config) -> GEmoClapLoss:
        return cls(
            loss_type=config.loss_type,
            alpha_e=config.alpha_e,
            target_normalization=config.target_normalization,
            num_emotions=len(config.emotion_labels),
            num_genders=len(config.gender_labels),
        )

    @staticmethod
    def model_settings(config) -> dict:
        """The settings of the loss a model builds from `config` (`GEmoClapModel.rebuild_loss`). The emotion count
        is left out: the loss reads it from the emotion table at every call, so re-labelling needs no rebuild."""
        return {
            "loss_type": config.loss_type,
            "alpha_e": float(config.alpha_e),
            "target_normalization": config.target_normalization,
            "num_genders": len(config.gender_labels),
        }

    @property
    def settings(self) -> dict:
        """This loss's settings, in the form of `model_settings`."""
        return {
            "loss_type": self.loss_type,
            "alpha_e": self.alpha_e,
            "target_normalization": self.target_normalization,
            "num_genders": self.num_genders,
        }

    def checked_against(self, config) -> GEmoClapLoss:
        """This loss, after checking that `config`'s loss settings are still the ones it was built with."""
        built, wanted = self.settings, self.model_settings(config)
        if built != wanted:
            changed = ", ".join(
                f"{key} {built[key]!r} -> {wanted[key]!r}" for key in built if built[key] != wanted[key]
            )
            raise ValueError(
                f"the config's loss settings changed since the model built its loss ({changed}): call "
                "`model.rebuild_loss()` after changing them."
            )
        return self

    @property
    def needs_gender(self) -> bool:
        return self.loss_type in ("sl", "ml")

    def forward(
        self,
        audio_embeds: torch.Tensor,
        emotion_text_embeds: torch.Tensor,
        logit_scales: tuple[torch.Tensor, torch.Tensor],
        emotion_labels: torch.Tensor,
        gender_labels: torch.Tensor | None = None,
        gender_text_embeds: torch.Tensor | None = None,
    ) -> GEmoClapLossOutput:
        """Args:
        audio_embeds: (batch, dim) L2-normalised audio embeddings of this process's clips.
        emotion_text_embeds: (num_emotions, dim) the emotion label-prompt table, in label-id order.
        logit_scales: (s_a, s_t), the exp'd temperatures.
        emotion_labels, gender_labels: (batch,) label ids (gender needed for "sl" and "ml").
        gender_text_embeds: (num_genders, dim) the gender label-prompt table (ML only).
        """
        if emotion_labels is None:
            raise ValueError("the GEmo-CLAP loss needs `emotion_labels` (one emotion id per clip).")
        if self.needs_gender and gender_labels is None:
            raise ValueError(f"loss_type={self.loss_type!r} needs `gender_labels` (one gender id per clip).")
        if self.loss_type == "ml" and gender_text_embeds is None:
            raise ValueError("loss_type='ml' needs the gender label-prompt table (`gender_text_embeds`).")
        _check_label_shapes(audio_embeds.shape[0], {"emotion_labels": emotion_labels, "gender_labels": gender_labels})
        num_emotions = self.num_emotions or emotion_text_embeds.shape[0]
        _assert_label_range("emotion_labels", emotion_labels, num_emotions)
        if gender_labels is not None and self.num_genders is not None:
            _assert_label_range("gender_labels", gender_labels, self.num_genders)
        batch = gather_across_processes(audio=audio_embeds, emotion=emotion_labels, gender=gender_labels)
        gender_rows = None
        if self.loss_type == "ml":
            gender_rows = gender_text_embeds[batch["gender"]]
        scale_audio, scale_text = logit_scales
        return gemo_clap_loss(
            batch["audio"],
            emotion_text_embeds[batch["emotion"]],
            batch["emotion"],
            scale_audio,
            scale_text,
            loss_type=self.loss_type,
            alpha_e=self.alpha_e,
            gender_labels=batch["gender"],
            gender_text_embeds=gender_rows,
            target_normalization=self.target_normalization,
        )


__all__ = [
    "GEmoClapLoss",
    "GEmoClapLossOutput",
    "LOSS_TYPES",
    "gemo_clap_loss",
    "gather_across_processes",
    "same_label_matrix",
    "target_distribution",
    "kl_to_target",
]
