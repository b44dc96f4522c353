"""The padding fix of group-norm and data2vec-audio towers keeps Hub weights and survives gradient checkpointing.

(The invariance itself is checked on every tower preset in test_presets_matrix.py.)
"""

import pytest
import torch
from tiny_models import tiny_audio_config, tiny_config, tiny_processor
from transformers import AutoModel

from gemo_clap_hf import GEmoClapModel
from gemo_clap_hf.padding_gemo_clap import make_padding_invariant


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
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_disable()
        loss = model(values, mask, emotion_labels=torch.tensor([0, 1, 2]), clip_index=clip_index).loss
        loss.backward()
        return model.audio_model.feature_extractor.conv_layers[0].conv.weight.grad.clone()

    reference = conv0_gradient(False)
    assert model.audio_model.feature_extractor.conv_layers[0].conv.weight.requires_grad
    torch.testing.assert_close(conv0_gradient(True), reference, atol=1e-6, rtol=1e-5)
