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
originals. The first conv layer receives its lengths as a keyword argument (`valid_samples`), which transformers'
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

    Same parameters (`weight`, `bias`) as the GroupNorm it replaces. Its conv layer (`MaskedGroupNormConvLayer`)
    sets, for one call, `valid_frames` (frames that lie inside the clip), `seen_frames` (frames that see any of its
    samples: the valid ones plus the few that straddle its end) and `padding_value` (what a frame that sees only
    zeroed padding holds: the conv's bias, or None for 0). With `valid_frames` None it is plain GroupNorm.
    """

    valid_frames: torch.Tensor | None = None
    seen_frames: torch.Tensor | None = None
    padding_value: torch.Tensor | None = None
    max_straddling_frames: int = 0

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        valid = self.valid_frames
        if valid is None:
            return super().forward(hidden)
        if valid.shape[0] != hidden.shape[0]:
            raise RuntimeError(
                f"MaskedGroupNorm got {hidden.shape[0]} clips but lengths for {valid.shape[0]}: call the speech "
                "tower itself (with its attention_mask), not its feature encoder alone."
            )
        # The statistics in float32; the output in the dtype nn.GroupNorm would return: CUDA's autocast runs group_norm
        # in float32, the CPU's leaves it in the input's dtype (bf16 in, bf16 out), as does no autocast.
        on_cuda_autocast = hidden.device.type == "cuda" and torch.is_autocast_enabled("cuda")
        out_dtype = torch.float32 if on_cuda_autocast else hidden.dtype
        values = hidden.float()
        sums, squares = self._valid_frame_moments(values)
        batch, channels, _ = values.shape
        per_group = channels // self.num_groups
        count = (valid.to(values.device, values.dtype) * per_group).clamp(min=1.0)[:, None]  # (batch, 1)
        mean = sums.view(batch, self.num_groups, per_group).sum(-1) / count  # (batch, groups)
        var = (squares.view(batch, self.num_groups, per_group).sum(-1) / count - mean.square()).clamp(min=0.0)
        scale = torch.rsqrt(var + self.eps).repeat_interleave(per_group, dim=1, output_size=channels)
        if self.affine:
            scale = scale * self.weight.float()
        shift = -mean.repeat_interleave(per_group, dim=1, output_size=channels) * scale
        if self.affine:
            shift = shift + self.bias.float()
        return torch.addcmul(shift[:, :, None], values, scale[:, :, None]).to(out_dtype)

    def _valid_frame_moments(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per (clip, channel) sum and sum of squares over the valid frames, shape (batch, channels) each.

        The first conv layer's output is the tower's largest activation (512 channels at 1/5 of the sample rate),
        so nothing here copies or masks it: the moments are taken over every frame in single read passes (what
        `nn.GroupNorm` itself costs) and the frames past each clip's end are taken off again. Those are known
        without reading the whole tail: the padding was zeroed before the conv, so beyond the few straddling frames
        (gathered) every frame holds `padding_value`.
        """
        batch, channels, steps = values.shape
        # One read pass each, no temporary (a norm's square, not a sum of squares); its gradient is 2x, also at 0.
        sums, squares = values.sum(-1), torch.linalg.vector_norm(values, dim=-1).square()
        valid = self.valid_frames.to(values.device)
        seen = self.seen_frames.to(values.device).clamp(max=steps)  # frames past the padded end do not exist
        straddling = int(self.max_straddling_frames)
        if straddling:
            index = valid[:, None] + torch.arange(straddling, device=values.device)  # (batch, straddling)
            tail = values.gather(-1, index.clamp(max=steps - 1)[:, None, :].expand(batch, channels, straddling))
            weight = (index < seen[:, None]).to(values.dtype)[:, None, :]  # only frames that exist and straddle
            sums = sums - (tail * weight).sum(-1)
            squares = squares - (tail.square() * weight).sum(-1)
        if self.padding_value is not None:
            padding_frames = (steps - seen).to(values.dtype)[:, None]  # (batch, 1)
            value = self.padding_value.float()[None, :]
            sums = sums - padding_frames * value
            squares = squares - padding_frames * value.square()
        return sums, squares


class MaskedGroupNormConvLayer(nn.Module):
    """Mixin for the first conv layer of a group-norm feature encoder: `forward(hidden, valid_samples=None)` zeroes
    each clip's padding (so frames past its end hold exactly the conv's bias) and hands its `MaskedGroupNorm` the
    frame counts of this call only."""

    def forward(self, hidden: torch.Tensor, valid_samples: torch.Tensor | None = None) -> torch.Tensor:
        if valid_samples is None:
            return super().forward(hidden)
        kernel, stride = self.conv.kernel_size[0], self.conv.stride[0]
        hidden = hidden * _valid_mask(valid_samples, hidden.shape[-1], hidden.device)[:, None, :].to(hidden.dtype)
        norm = self.layer_norm
        norm.valid_frames = torch.div(valid_samples - kernel, stride, rounding_mode="floor") + 1
        norm.seen_frames = torch.div(valid_samples - 1, stride, rounding_mode="floor") + 1
        norm.max_straddling_frames = -(-(kernel - 1) // stride)
        # A view, not the Parameter itself (assigning that would register it on the norm): gradients still flow.
        norm.padding_value = None if self.conv.bias is None else self.conv.bias.view(-1)
        try:
            return super().forward(hidden)
        finally:
            norm.valid_frames = norm.seen_frames = norm.padding_value = None


def _pass_valid_samples(layer: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Forward pre-hook of the first conv layer: its call's lengths as a keyword (set by the tower's pre-hook)."""
    return args, {**kwargs, "valid_samples": layer._gemo_clap_valid_samples}


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
        if source == "conv0":
            module._gemo_clap_valid_samples = samples  # passed on as a keyword by `_pass_valid_samples`
        else:
            module.valid_frames = None if samples is None else tower._get_feat_extract_output_lengths(samples)


def make_padding_invariant(tower: nn.Module) -> nn.Module:
    """Patch a speech tower in place (idempotent) so that padding never changes a clip's outputs; returns it."""
    if getattr(tower, "_gemo_clap_masked_modules", None) is not None:
        return tower
    masked = _modules_to_mask(tower)
    for module, source in masked:
        if source == "conv0":
            module.layer_norm.__class__ = _masked_subclass(module.layer_norm, MaskedGroupNorm)
            module.__class__ = _masked_subclass(module, MaskedGroupNormConvLayer)
            module._gemo_clap_valid_samples = None
            module.register_forward_pre_hook(_pass_valid_samples, with_kwargs=True)
        else:
            module.__class__ = _masked_subclass(module, MaskedPositionalConvLayer)
    tower._gemo_clap_masked_modules = masked
    if masked:
        tower.register_forward_pre_hook(_set_valid_lengths, with_kwargs=True)
    return tower


__all__ = ["MaskedGroupNorm", "MaskedGroupNormConvLayer", "MaskedPositionalConvLayer", "make_padding_invariant"]
