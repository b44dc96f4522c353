"""Make wav2vec2-family speech towers exactly padding-invariant: a clip's output never depends on its batch.

transformers' towers honour the attention mask in attention, but two places still mix padding into valid frames:
- group-norm feature encoders (`feat_extract_norm="group"`: wavlm-base-plus, hubert-base, wav2vec2-base) take the
  first conv layer's GroupNorm statistics over the whole padded signal (transformers only advises not to pass a
  mask to such models, which does not help a batch of different lengths);
- data2vec-audio's stack of positional convolutions turns the zeroed padded frames into non-zero values between
  its layers, and the next layer mixes them into the last valid frames.

`make_padding_invariant(tower)` fixes both without touching weights or state-dict keys (checkpoints from the Hub load
as they are): the first GroupNorm becomes a `MaskedGroupNorm` (statistics over each clip's valid frames only) and
data2vec's positional conv layers zero the padded frames of their output. A forward pre-hook on the tower reads the
`attention_mask` of every call and hands the valid lengths to those modules; with no mask they behave exactly as the
originals. The first conv layer receives its lengths as a keyword argument (`valid_frames`), which transformers'
gradient checkpointing binds into the recomputation, so a backward pass recomputes each tower call with its own
lengths even when one forward called the tower several times (windows of long clips).

Travels with saved models (`trust_remote_code`): imports only torch.
"""

from __future__ import annotations

import torch
from torch import nn


def _valid_mask(lengths: torch.Tensor, size: int, device: torch.device) -> torch.Tensor:
    """(batch, size) booleans, True for the first `lengths[b]` positions; built on the device, no host sync."""
    return torch.arange(size, device=device)[None, :] < lengths.to(device)[:, None]


class MaskedGroupNorm(nn.GroupNorm):
    """`nn.GroupNorm` over (batch, channels, frames) whose statistics cover each clip's valid frames only.

    Same parameters (`weight`, `bias`) as the GroupNorm it replaces. `valid_frames` (set by the tower's pre-hook)
    holds the number of valid output frames per clip, or None for an unpadded batch (plain GroupNorm).
    """

    valid_frames: torch.Tensor | None = None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        frames = self.valid_frames
        if frames is None:
            return super().forward(hidden)
        if frames.shape[0] != hidden.shape[0]:
            raise RuntimeError(
                f"MaskedGroupNorm got {hidden.shape[0]} clips but lengths for {frames.shape[0]}: call the speech "
                "tower itself (with its attention_mask), not its feature encoder alone."
            )
        # GroupNorm runs in float32 under autocast; do the same, and return what nn.GroupNorm would.
        out_dtype = torch.float32 if torch.is_autocast_enabled(hidden.device.type) else hidden.dtype
        batch, channels, steps = hidden.shape
        values = hidden.float()
        # The first conv layer's output is the largest activation of the tower (512 channels at 1/5 of the sample
        # rate), so the statistics are reductions by matrix product (no masked copy) and the output is one fused
        # multiply-add: a few passes over the tensor, close to nn.GroupNorm's cost.
        mask = _valid_mask(frames, steps, hidden.device).to(values.dtype)[:, :, None]  # (batch, frames, 1)
        per_group = channels // self.num_groups
        count = (mask.sum(1) * per_group).clamp(min=1.0)  # (batch, 1): valid elements per group
        sums = torch.bmm(values, mask).view(batch, self.num_groups, per_group).sum(-1)  # (batch, groups)
        mean = sums / count
        centred = values - mean.repeat_interleave(per_group, dim=1, output_size=channels)[:, :, None]
        squares = centred * centred if centred.requires_grad else centred.square_()  # in place: no graph to keep
        var = torch.bmm(squares, mask).view(batch, self.num_groups, per_group).sum(-1) / count
        scale = torch.rsqrt(var + self.eps).repeat_interleave(per_group, dim=1, output_size=channels)
        if self.affine:
            scale = scale * self.weight.float()
        shift = -mean.repeat_interleave(per_group, dim=1, output_size=channels) * scale
        if self.affine:
            shift = shift + self.bias.float()
        return torch.addcmul(shift[:, :, None], values, scale[:, :, None]).to(out_dtype)


class MaskedGroupNormConvLayer(nn.Module):
    """Mixin for the first conv layer of a group-norm feature encoder: `forward(hidden, valid_frames=None)` hands
    `valid_frames` to its `MaskedGroupNorm` for this call only."""

    def forward(self, hidden: torch.Tensor, valid_frames: torch.Tensor | None = None) -> torch.Tensor:
        self.layer_norm.valid_frames = valid_frames
        try:
            return super().forward(hidden)
        finally:
            self.layer_norm.valid_frames = None


def _pass_valid_frames(layer: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Forward pre-hook of the first conv layer: its call's lengths as a keyword (set by the tower's pre-hook)."""
    return args, {**kwargs, "valid_frames": layer._gemo_clap_valid_frames}


class MaskedPositionalConvLayer(nn.Module):
    """Mixin for data2vec-audio's positional conv layers: zero the padded frames of the layer's output.

    The encoder zeroes padded frames before the first layer; keeping them zero between layers makes every layer see,
    past a clip's end, the zeros that a lone clip's convolution padding gives.
    """

    valid_frames: torch.Tensor | None = None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # (batch, channels, frames)
        hidden = super().forward(hidden)
        if self.valid_frames is None:
            return hidden
        return hidden * _valid_mask(self.valid_frames, hidden.shape[-1], hidden.device)[:, None, :].to(hidden.dtype)


def _masked_subclass(module: nn.Module, mixin: type) -> type:
    """`type(module)` with `mixin` in front (same parameters and state-dict keys), made once per class.

    The class is published in this module under its name, so that models holding it can still be pickled.
    """
    base = type(module)
    if issubclass(base, mixin):
        return base
    if base in mixin.__bases__:
        return mixin
    name = f"GEmoClap{base.__name__}"
    if name not in globals():
        globals()[name] = type(name, (mixin, base), {"__module__": __name__, "__qualname__": name})
    return globals()[name]


def _modules_to_mask(tower: nn.Module) -> list[tuple[nn.Module, str]]:
    """(module, where its lengths come from) pairs: "conv0" for the first GroupNorm, "frames" for positional convs."""
    found = []
    feature_encoder = getattr(tower, "feature_extractor", None)
    conv_layers = getattr(feature_encoder, "conv_layers", None)
    if conv_layers is not None and isinstance(getattr(conv_layers[0], "layer_norm", None), nn.GroupNorm):
        found.append((conv_layers[0], "conv0"))
    pos_conv = getattr(getattr(tower, "encoder", None), "pos_conv_embed", None)
    for layer in getattr(pos_conv, "layers", None) or ():
        if len(getattr(pos_conv, "layers", ())) > 1:  # data2vec's stack; a single conv sees only zeros past the end
            found.append((layer, "frames"))
    return found


def _set_valid_lengths(tower: nn.Module, args: tuple, kwargs: dict) -> None:
    """Forward pre-hook: hand the valid lengths of this call to the masked modules (None without a mask)."""
    mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
    samples = None if mask is None else mask.sum(-1)
    for module, source in tower._gemo_clap_masked_modules:
        if samples is None:
            lengths = None
        elif source == "conv0":
            kernel, stride = tower.config.conv_kernel[0], tower.config.conv_stride[0]
            lengths = torch.div(samples - kernel, stride, rounding_mode="floor") + 1
        else:
            lengths = tower._get_feat_extract_output_lengths(samples)
        if source == "conv0":
            module._gemo_clap_valid_frames = lengths  # passed on as a keyword by `_pass_valid_frames`
        else:
            module.valid_frames = lengths


def make_padding_invariant(tower: nn.Module) -> nn.Module:
    """Patch a speech tower in place (idempotent) so that padding never changes a clip's outputs; returns it."""
    if getattr(tower, "_gemo_clap_masked_modules", None) is not None:
        return tower
    masked = _modules_to_mask(tower)
    for module, source in masked:
        if source == "conv0":
            module.layer_norm.__class__ = _masked_subclass(module.layer_norm, MaskedGroupNorm)
            module.__class__ = _masked_subclass(module, MaskedGroupNormConvLayer)
            module._gemo_clap_valid_frames = None
            module.register_forward_pre_hook(_pass_valid_frames, with_kwargs=True)
        else:
            module.__class__ = _masked_subclass(module, MaskedPositionalConvLayer)
    tower._gemo_clap_masked_modules = masked
    if masked:
        tower.register_forward_pre_hook(_set_valid_lengths, with_kwargs=True)
    return tower


__all__ = ["MaskedGroupNorm", "MaskedGroupNormConvLayer", "MaskedPositionalConvLayer", "make_padding_invariant"]
