"""The GEmo-CLAP losses stay finite (with finite gradients) where contrastive losses usually break.

Temperatures at and beyond their clamp, identical embeddings, a batch of one, and bf16 autocast on CPU, for
the three loss types; first on the pure loss function, then end to end through the tiny model.
"""

import math

import pytest
import torch
from torch.nn import functional as F

from gemo_clap_hf import GEmoClapFeatureExtractor, GEmoClapModel, gemo_clap_loss
from gemo_clap_hf.configuration_gemo_clap import MAX_LOGIT_SCALE
from tests.helpers.tiny_models import random_clip, tiny_config, tiny_processor

LOSS_TYPES = ("emo", "sl", "ml")
LOG_SCALES = (math.log(MAX_LOGIT_SCALE), 10.0, 50.0)  # at the clamp, and far beyond it


def _loss_inputs(batch: int, identical: bool, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    rows = 1 if identical else batch
    audio = F.normalize(torch.randn(rows, 16, generator=generator), dim=-1).expand(batch, 16).clone()
    text = F.normalize(torch.randn(rows, 16, generator=generator), dim=-1).expand(batch, 16).clone()
    gender_text = F.normalize(torch.randn(rows, 16, generator=generator), dim=-1).expand(batch, 16).clone()
    emotion = torch.arange(batch) % 4
    gender = torch.arange(batch) % 2
    return audio.requires_grad_(), text.requires_grad_(), gender_text.requires_grad_(), emotion, gender


def _assert_finite_loss_and_grads(loss: torch.Tensor, tensors) -> None:
    assert torch.isfinite(loss), loss
    loss.backward()
    for tensor in tensors:
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all()


@pytest.fixture(scope="module")
def temperatures() -> GEmoClapModel:
    """A tiny model whose log-temperature parameters the loss tests set (each test sets both first)."""
    torch.manual_seed(0)
    return GEmoClapModel(tiny_config()).train()


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("normalization", ["sum", "softmax"])
@pytest.mark.parametrize("log_scale", LOG_SCALES)
@pytest.mark.parametrize("batch, identical", [(1, False), (6, True), (6, False)])
def test_loss_is_finite_at_the_temperature_clamp(temperatures, loss_type, normalization, log_scale, batch, identical):
    """The temperatures come from the model's own cap (`GEmoClapModel.logit_scales`), its log-scale parameters set
    at or beyond it: the scales are exactly 100, the loss and every gradient (the parameters' too) finite, and
    `clamp_logit_scales_` brings the parameters back to log 100."""
    audio, text, gender_text, emotion, gender = _loss_inputs(batch, identical)
    with torch.no_grad():
        temperatures.logit_scale_audio.fill_(log_scale)
        temperatures.logit_scale_text.fill_(log_scale)
    temperatures.zero_grad()
    scale_audio, scale_text = temperatures.logit_scales
    assert scale_audio.item() == scale_text.item() == pytest.approx(MAX_LOGIT_SCALE, rel=1e-6)
    out = gemo_clap_loss(
        audio,
        text,
        emotion,
        scale_audio,
        scale_text,
        loss_type=loss_type,
        gender_labels=gender,
        gender_text_embeds=gender_text,
        target_normalization=normalization,
    )
    parameters = [temperatures.logit_scale_audio, temperatures.logit_scale_text]
    tensors = [audio, text, *parameters] + ([gender_text] if loss_type == "ml" else [])
    _assert_finite_loss_and_grads(out.loss, tensors)
    temperatures.clamp_logit_scales_()
    assert all(parameter.item() == pytest.approx(math.log(MAX_LOGIT_SCALE)) for parameter in parameters)


def test_a_batch_of_one_has_zero_loss():
    audio, text, gender_text, emotion, gender = _loss_inputs(1, identical=False)
    scale = torch.tensor(MAX_LOGIT_SCALE)
    for loss_type in LOSS_TYPES:
        out = gemo_clap_loss(
            audio,
            text,
            emotion,
            scale,
            scale,
            loss_type=loss_type,
            gender_labels=gender,
            gender_text_embeds=gender_text,
        )
        assert out.loss.item() == pytest.approx(0.0, abs=1e-6)  # one clip: the target and the softmax are both [1]


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    return tiny_processor(tmp_path_factory.mktemp("tok"))


def _batch(processor, config, clips):
    """Model inputs with labels for `clips`, as GEmoClapDataCollator builds them."""
    emotion = torch.arange(len(clips)) % len(config.emotion_labels)
    gender = torch.arange(len(clips)) % len(config.gender_labels)
    inputs = processor(audio=clips, sampling_rate=16000, return_tensors="pt")
    return dict(inputs, emotion_labels=emotion, gender_labels=gender)


def _train_step(model, batch, autocast: bool) -> torch.Tensor:
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = model(**batch, return_loss=True).loss
    assert torch.isfinite(loss), loss
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    return loss


CLIP_SETS = {
    "distinct": lambda: [random_clip(0.6, seed=s) for s in range(4)],
    "identical": lambda: [random_clip(0.6, seed=1)] * 4,
    "silent": lambda: [random_clip(0.6, seed=1) * 0.0] * 2,
    "one": lambda: [random_clip(0.6, seed=2)],
}


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_model_loss_and_gradients_are_finite_at_the_clamp(processor, loss_type):
    torch.manual_seed(0)
    model = GEmoClapModel(tiny_config(loss_type=loss_type)).train()
    model.set_prompts(processor.tokenizer)
    for clips in CLIP_SETS.values():
        batch = _batch(processor, model.config, clips())
        for log_scale in LOG_SCALES[:2]:
            with torch.no_grad():
                model.logit_scale_audio.fill_(log_scale)
                model.logit_scale_text.fill_(log_scale)
            _train_step(model, batch, autocast=False)


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_bf16_autocast_forward_and_backward_are_finite(processor, loss_type):
    torch.manual_seed(0)
    model = GEmoClapModel(tiny_config(loss_type=loss_type)).train()
    model.set_prompts(processor.tokenizer)
    batch = _batch(processor, model.config, CLIP_SETS["distinct"]())
    full = _train_step(model, batch, autocast=False)
    half = _train_step(model, batch, autocast=True)
    assert half.dtype == torch.float32  # the loss itself is computed in float32 under autocast
    assert half.item() == pytest.approx(full.item(), rel=0.1, abs=0.05)
    with torch.no_grad():
        model.logit_scale_audio.fill_(10.0)
        model.logit_scale_text.fill_(10.0)
    _train_step(model, _batch(processor, model.config, CLIP_SETS["identical"]()), autocast=True)


# ----- half precision with hand-made masks (transformers' common eager/SDPA tests) ---------------------------------


def _common_test_batch(side: str, rows: int = 7, samples: int = 400) -> tuple[torch.Tensor, torch.Tensor]:
    """What `test_eager_matches_sdpa_inference_*_pad_{left,right}` feeds an audio model: uniform noise in [0, 1),
    here as long as the receptive field, and a mask that takes 2 samples off the last row on one side."""
    values = torch.rand(rows, samples, generator=torch.Generator().manual_seed(0))
    mask = torch.ones(rows, samples, dtype=torch.long)
    padding = slice(0, 2) if side == "left" else slice(samples - 2, samples)
    mask[-1, padding] = 0
    return values, mask


@pytest.mark.parametrize("side", ["left", "right"])
def test_half_precision_logits_are_finite_when_a_row_is_shorter_than_the_receptive_field(tiny_checkpoint, side):
    """Such a row has no frame to average; it used to give a zero embedding, NaN once L2-normalised in float16."""
    from gemo_clap_hf import GEmoClapForAudioClassification

    values, mask = _common_test_batch(side)
    logits = {}
    for dtype in (torch.float32, torch.float16):
        classifier = GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint, dtype=dtype).eval()
        with torch.no_grad():
            logits[dtype] = classifier(values.to(dtype), attention_mask=mask).logits.float()
        assert torch.isfinite(logits[dtype]).all(), (dtype, logits[dtype])
    torch.testing.assert_close(logits[torch.float16], logits[torch.float32], atol=2e-2, rtol=2e-2)


def test_a_row_shorter_than_the_receptive_field_is_scored_as_the_feature_extractor_pads_it(tiny_checkpoint):
    from gemo_clap_hf import GEmoClapForAudioClassification

    values, mask = _common_test_batch("right")
    classifier = GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).eval()
    short = values[-1, :398].numpy()
    padded = GEmoClapFeatureExtractor(do_normalize=False)(short, sampling_rate=16000, return_tensors="pt")
    assert padded["input_values"].shape == (1, 400) and int(padded["audio_attention_mask"].sum()) == 400
    with torch.no_grad():
        batched = classifier(values, attention_mask=mask).logits[-1]
        alone = classifier(**padded).logits[0]
    assert alone.abs().max() > 0.1  # a real score, not the zero vector's 0 logits
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
