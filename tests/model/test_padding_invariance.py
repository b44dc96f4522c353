"""The padding fix of group-norm and data2vec-audio towers keeps Hub weights and survives gradient checkpointing.

(The invariance itself is checked on every tower preset in test_presets_matrix.py.)
"""

import pytest
import torch
from transformers import AutoModel

from gemo_clap_hf import GEmoClapModel
from gemo_clap_hf.padding_gemo_clap import MaskedGroupNorm, make_padding_invariant
from tests.helpers.tiny_models import tiny_audio_config, tiny_config, tiny_processor


@pytest.mark.parametrize("audio_type", ["wavlm", "hubert", "wav2vec2", "data2vec-audio"])
def test_the_patched_tower_keeps_its_state_dict_and_unpadded_outputs(audio_type):
    torch.manual_seed(0)
    plain = AutoModel.from_config(tiny_audio_config(audio_type)).eval()
    patched = AutoModel.from_config(tiny_audio_config(audio_type)).eval()
    patched.load_state_dict(plain.state_dict())
    make_padding_invariant(patched)
    assert list(patched.state_dict()) == list(plain.state_dict())  # Hub checkpoints load as they are
    values = torch.randn(2, 8000)
    full = torch.ones(2, 8000, dtype=torch.long)
    with torch.no_grad():
        for mask in (None, full):  # no padding: exactly the original computation
            torch.testing.assert_close(
                patched(values, attention_mask=mask).last_hidden_state,
                plain(values, attention_mask=mask).last_hidden_state,
                atol=1e-5,
                rtol=1e-5,
            )


def test_gradient_checkpointing_recomputes_each_window_with_its_own_lengths(tmp_path):
    """A long clip's windows go through the tower in several calls per forward; checkpointing recomputes them in
    backward. Each recomputation must use its own call's lengths (else: a shape error or wrong gradients)."""
    torch.manual_seed(0)
    model = GEmoClapModel(tiny_config(loss_type="emo")).train()  # group-norm wavlm-base-plus structure
    model.set_prompts(tiny_processor(tmp_path).tokenizer)
    model.window_batch_size = 1
    values = torch.randn(4, 8000)
    mask = torch.ones(4, 8000, dtype=torch.long)
    mask[1, 5000:] = 0
    mask[3, 3000:] = 0
    clip_index = torch.tensor([0, 0, 1, 2])

    def conv0_gradient(checkpointing: bool) -> torch.Tensor:
        model.zero_grad()
        if checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.activation_checkpointing_disable()
        loss = model(values, mask, emotion_labels=torch.tensor([0, 1, 2]), clip_index=clip_index).loss
        loss.backward()
        return model.audio_model.feature_extractor.conv_layers[0].conv.weight.grad.clone()

    reference = conv0_gradient(False)
    assert model.audio_model.feature_extractor.conv_layers[0].conv.weight.requires_grad
    torch.testing.assert_close(conv0_gradient(True), reference, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("conv_bias", [False, True])
@pytest.mark.parametrize("train_feature_encoder", [False, True])
def test_masked_group_norm_statistics_cover_exactly_each_clips_valid_frames(conv_bias, train_feature_encoder):
    """MaskedGroupNorm takes its moments over every frame and subtracts the frames past each clip's end (the
    straddling ones gathered, the rest known to hold the conv's bias). Lengths at every offset of the first conv's
    stride (0, 1 or 2 straddling frames), garbage in the padding, with and without a conv bias, and with gradients
    (a trained feature encoder): the features and the first conv's weight gradient equal each clip run alone."""
    torch.manual_seed(0)
    tower = AutoModel.from_config(tiny_audio_config("wavlm", conv_bias=conv_bias)).train()
    tower.config.layerdrop = 0.0
    make_padding_invariant(tower)
    encoder = tower.feature_extractor
    encoder._requires_grad = train_feature_encoder
    conv0 = encoder.conv_layers[0].conv
    lengths = [4000 + offset for offset in range(5)] + [4100]  # every remainder modulo conv 0's stride of 5
    values = torch.randn(len(lengths), max(lengths))  # the padding holds garbage, not zeros
    mask = torch.zeros_like(values, dtype=torch.long)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
    frames = tower._get_feat_extract_output_lengths(torch.tensor(lengths))

    def features_and_gradient(batch, batch_mask, rows):
        conv0.weight.grad = None
        out = tower(batch, attention_mask=batch_mask, output_hidden_states=False).extract_features
        kept = [out[row, : int(frames[index])] for index, row in rows]
        if train_feature_encoder:
            sum(piece.square().sum() for piece in kept).backward()
        return kept, None if conv0.weight.grad is None else conv0.weight.grad.clone()

    batched, batched_grad = features_and_gradient(values, mask, list(enumerate(range(len(lengths)))))
    alone_grad = 0
    for index, length in enumerate(lengths):
        (alone,), grad = features_and_gradient(values[index : index + 1, :length], None, [(index, 0)])
        torch.testing.assert_close(batched[index], alone, atol=2e-5, rtol=1e-4)
        alone_grad = alone_grad + grad if train_feature_encoder else 0
    if train_feature_encoder:
        torch.testing.assert_close(batched_grad, alone_grad, atol=1e-4, rtol=1e-4)
    else:
        assert batched_grad is None


def _masked_group_norm(valid_frames: list[int]) -> MaskedGroupNorm:
    """A MaskedGroupNorm (4 channels, 2 groups, trained-looking affine weights) with the lengths a tower call sets."""
    norm = MaskedGroupNorm(num_groups=2, num_channels=4)
    with torch.no_grad():
        norm.weight.normal_(1.0, 0.3, generator=torch.manual_seed(1))
        norm.bias.normal_(0.0, 0.5, generator=torch.manual_seed(2))
    norm.valid_frames = norm.seen_frames = torch.tensor(valid_frames)
    norm.padding_value, norm.max_straddling_frames = None, 0
    return norm


def test_masked_group_norm_refuses_lengths_for_another_batch_and_matches_group_norm_under_autocast():
    """Called with another batch than its lengths describe (its feature encoder run alone after a tower call), it
    says what to call instead; on clips without padding its output equals nn.GroupNorm's, in nn.GroupNorm's dtype
    with and without CPU bf16 autocast (bf16: the CPU's autocast leaves group_norm in the input's dtype)."""
    norm = _masked_group_norm([6, 6])
    with pytest.raises(RuntimeError) as caught:
        norm(torch.randn(3, 4, 6))
    assert str(caught.value) == (
        "MaskedGroupNorm got 3 clips but lengths for 2: call the speech tower itself (with its attention_mask), "
        "not its feature encoder alone."
    )
    hidden = torch.randn(2, 4, 6, generator=torch.manual_seed(3))
    plain = torch.nn.GroupNorm(2, 4)
    plain.load_state_dict(norm.state_dict())
    torch.testing.assert_close(norm(hidden), plain(hidden))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        masked, reference = norm(hidden.bfloat16()), plain(hidden.bfloat16())
    assert masked.dtype == reference.dtype == torch.bfloat16
    torch.testing.assert_close(masked.float(), reference.float(), atol=3e-2, rtol=3e-2)
    assert norm(hidden.bfloat16()).dtype == torch.bfloat16  # outside autocast: the input's dtype, as GroupNorm
