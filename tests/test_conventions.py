"""What transformers' common model tests expect of every model, checked on GEmo-CLAP's two classes.

Loading keywords, `return_dict`, unknown arguments, the audio-mask name users know, one label set, the
transformers 5 feature-method contract, gradients for every trainable parameter, `torch.export`, a label cache
that never goes stale, and temperatures that cannot stick at their cap.
"""

import math

import pytest
import torch
from tiny_models import random_clip, tiny_config, tiny_processor
from transformers import AutoModelForAudioClassification, AutoProcessor
from transformers.modeling_outputs import BaseModelOutputWithPooling

from gemo_clap_hf import GEmoClapConfig, GEmoClapForAudioClassification, GEmoClapModel


@pytest.fixture(scope="module")
def processor(tiny_checkpoint):
    return AutoProcessor.from_pretrained(tiny_checkpoint)


@pytest.fixture(scope="module")
def audio(processor):
    return processor(audio=[random_clip(1.0), random_clip(0.4, seed=5)], sampling_rate=16000, return_tensors="pt")


def fresh_logits(classifier, audio):
    """The classifier's logits computed from scratch (no cache), from the same weights."""
    dual = classifier.gemo_clap
    with torch.no_grad():
        embeds = dual.get_audio_features(audio["input_values"], audio["audio_attention_mask"]).pooler_output
        ids, mask = dual._prompt_inputs("emotion")
        table = dual.get_text_features(ids, mask).pooler_output
        return dual.logit_scales[0] * embeds @ table.t()


# ----- loading ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loader", [GEmoClapModel, GEmoClapForAudioClassification, AutoModelForAudioClassification])
def test_output_loading_info_returns_the_model_and_the_report(tiny_checkpoint, loader):
    model, info = loader.from_pretrained(tiny_checkpoint, output_loading_info=True)
    assert isinstance(model, (GEmoClapModel, GEmoClapForAudioClassification))
    assert model.has_prompts  # the tokenizer beside the weights was still read
    assert set(info) >= {"missing_keys", "unexpected_keys"} and not info["missing_keys"]


# ----- forward arguments -----------------------------------------------------------------------------------------


def test_return_dict_false_gives_tuples_in_the_documented_order(tiny_checkpoint, audio):
    dual = GEmoClapModel.from_pretrained(tiny_checkpoint).eval()
    classifier = GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).eval()
    labels = {"emotion_labels": torch.tensor([1, 2]), "gender_labels": torch.tensor([0, 1])}
    with torch.no_grad():
        out = dual(**audio, **labels)
        loss, logits_per_audio, logits_per_text, audio_embeds, text_embeds = dual(**audio, **labels, return_dict=False)
        (logits,) = classifier(**audio, return_dict=False)
    assert torch.equal(loss, out.loss) and torch.equal(logits_per_audio, out.logits_per_audio)
    assert torch.equal(audio_embeds, out.audio_embeds) and torch.equal(text_embeds, out.text_embeds)
    assert torch.equal(logits_per_text, out.logits_per_text) and torch.equal(logits, classifier(**audio).logits)


@pytest.mark.parametrize("cls", [GEmoClapModel, GEmoClapForAudioClassification])
def test_unknown_keyword_arguments_are_refused(tiny_checkpoint, audio, cls):
    model = cls.from_pretrained(tiny_checkpoint).eval()
    with pytest.raises(TypeError, match="audio_atention_mask"):
        model(audio["input_values"], audio_atention_mask=audio["audio_attention_mask"])


def test_classifier_takes_attention_mask_as_its_audio_mask(tiny_checkpoint, audio):
    classifier = GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).eval()
    values, mask = audio["input_values"], audio["audio_attention_mask"]
    with torch.no_grad():
        with_audio_name = classifier(values, audio_attention_mask=mask).logits
        with_wav2vec2_name = classifier(values, attention_mask=mask).logits
        unmasked = classifier(values).logits
        both_same = classifier(values, attention_mask=mask, audio_attention_mask=mask.clone()).logits
    torch.testing.assert_close(with_wav2vec2_name, with_audio_name, rtol=0, atol=0)
    torch.testing.assert_close(both_same, with_audio_name, rtol=0, atol=0)
    assert (unmasked[1] - with_audio_name[1]).abs().max() > 1e-4  # the short clip's padding matters without a mask
    other = mask.clone()
    other[0, -10:] = 0
    with pytest.raises(ValueError, match="both given and differ"):
        classifier(values, attention_mask=other, audio_attention_mask=mask)


# ----- one label set ---------------------------------------------------------------------------------------------


def test_num_labels_that_disagrees_with_the_emotion_labels_is_refused(tiny_checkpoint):
    with pytest.raises(ValueError, match="num_labels=6.*emotion_labels"):
        GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint, num_labels=6)
    config = GEmoClapConfig.from_pretrained(tiny_checkpoint)
    with pytest.raises(ValueError, match="num_labels=3"):
        config.num_labels = 3
    assert config.id2label == {0: "neutral", 1: "happy", 2: "sad", 3: "angry"} and config.num_labels == 4
    with pytest.raises(ValueError, match="disagrees with `emotion_labels`"):
        GEmoClapConfig(emotion_labels=["calm", "angry"], id2label={0: "calm", 1: "sad"})


def test_relabelling_a_trained_model_re_derives_its_prompts(tiny_checkpoint, processor, audio):
    new = {0: "angry", 1: "calm", 2: "sad"}
    classifier = GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint, id2label=new).eval()
    assert classifier.config.emotion_labels == ["angry", "calm", "sad"] and classifier.config.num_labels == 3
    dual = GEmoClapModel.from_pretrained(tiny_checkpoint).eval()
    prompts = processor.tokenizer(list(new.values()), padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = classifier(**audio).logits
        expected = dual(**audio, **prompts).logits_per_audio
    assert logits.shape == (2, 3)
    torch.testing.assert_close(logits, expected)
    classifier.config.emotion_labels = ["neutral", "sad"]  # re-labelled after loading: prompts follow again
    with torch.no_grad():
        assert classifier(**audio).logits.shape == (2, 2)
    assert classifier.config.id2label == {0: "neutral", 1: "sad"}


# ----- gradients -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [GEmoClapModel, GEmoClapForAudioClassification])
def test_every_trainable_parameter_gets_a_gradient(tmp_path, cls):
    """DDP without find_unused_parameters (the Trainer's choice under gradient checkpointing) needs this."""
    torch.manual_seed(0)
    model = cls(tiny_config(loss_type="ml")).train()
    tokenizer = tiny_processor(tmp_path).tokenizer
    model.set_prompts(tokenizer)
    values = torch.tensor(random_clip(0.6))[None].repeat(4, 1)
    values[2:] = torch.tensor(random_clip(0.6, seed=3))
    if cls is GEmoClapModel:
        loss = model(values, emotion_labels=torch.tensor([0, 1, 2, 3]), gender_labels=torch.tensor([0, 1, 1, 0])).loss
    else:
        loss = model(values, labels=torch.tensor([0, 1, 2, 3])).loss
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    assert getattr(model, "gemo_clap", model).text_model.pooler is None  # built without the unused pooler


# ----- the transformers 5 feature-method contract ----------------------------------------------------------------


def test_feature_methods_return_base_model_output_with_pooling(tiny_checkpoint, processor, audio):
    model = GEmoClapModel.from_pretrained(tiny_checkpoint, attn_implementation="eager").eval()  # sdpa: no attentions
    text = processor.tokenizer(["happy", "sad", "angry"], padding=True, return_tensors="pt")
    with torch.no_grad():
        audio_out = model.get_audio_features(**audio, output_hidden_states=True)
        text_out = model.get_text_features(**text, output_hidden_states=True, output_attentions=True)
        audio_tuple = model.get_audio_features(**audio, return_dict=False)
    for out, rows in ((audio_out, 2), (text_out, 3)):
        assert isinstance(out, BaseModelOutputWithPooling)
        assert out.pooler_output.shape == (rows, model.config.projection_dim)
        torch.testing.assert_close(out.pooler_output.norm(dim=-1), torch.ones(rows))
    assert len(audio_out.hidden_states) == model.config.audio_config.num_hidden_layers + 1
    assert len(text_out.attentions) == model.config.text_config.num_hidden_layers
    assert isinstance(audio_tuple, tuple)
    torch.testing.assert_close(audio_tuple[1], audio_out.pooler_output)  # (last_hidden_state, pooler_output)


# ----- torch.export ----------------------------------------------------------------------------------------------


def test_classifier_exports_with_dynamic_batch_and_time(tiny_checkpoint, processor):
    classifier = GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).eval()
    example = processor(audio=[random_clip(0.5), random_clip(1.0, seed=1)], sampling_rate=16000, return_tensors="pt")
    batch, time = torch.export.Dim("batch", min=1, max=64), torch.export.Dim("time", min=1600, max=16000 * 60)
    inputs = {"input_values": example["input_values"], "audio_attention_mask": example["audio_attention_mask"]}
    exported = torch.export.export(
        classifier, (), inputs, dynamic_shapes={name: {0: batch, 1: time} for name in inputs}
    )
    assert classifier.gemo_clap._label_cache == {}  # tracing left no fake tensors in the cache
    other = processor(
        audio=[random_clip(0.7, seed=3), random_clip(0.3, seed=4), random_clip(2.0, seed=5)],
        sampling_rate=16000,
        return_tensors="pt",
    )
    with torch.no_grad():
        expected = classifier(**other).logits
    got = exported.module()(input_values=other["input_values"], audio_attention_mask=other["audio_attention_mask"])
    torch.testing.assert_close(got.logits, expected, atol=1e-5, rtol=1e-5)


# ----- the label cache -------------------------------------------------------------------------------------------


def test_label_cache_never_goes_stale(tiny_checkpoint, audio):
    classifier = GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).eval()
    text_params = list(classifier.gemo_clap.text_model.parameters()) + list(
        classifier.gemo_clap.text_projection.parameters()
    )

    with torch.no_grad():
        before = classifier(**audio).logits
    # Fused AdamW (the Trainer's default) changes weights without bumping version counters.
    optimizer = torch.optim.AdamW(text_params, lr=0.5, fused=True)
    classifier.train()
    classifier(**audio, labels=torch.tensor([1, 2])).loss.backward()
    optimizer.step()
    classifier.eval()
    with torch.no_grad():
        after_step = classifier(**audio).logits
    assert not torch.allclose(after_step, before)
    torch.testing.assert_close(after_step, fresh_logits(classifier, audio))

    # In-place `p.data` changes in evaluation mode: seen after the documented `eval()` call.
    for p in text_params:
        p.data.mul_(1.5)
    classifier.eval()
    with torch.no_grad():
        torch.testing.assert_close(classifier(**audio).logits, fresh_logits(classifier, audio))

    # load_state_dict and dtype moves.
    classifier.load_state_dict(GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).state_dict())
    with torch.no_grad():
        torch.testing.assert_close(classifier(**audio).logits, before)
    classifier.to(torch.float64)
    with torch.no_grad():
        as_double = classifier(
            input_values=audio["input_values"].double(), audio_attention_mask=audio["audio_attention_mask"]
        ).logits
    assert as_double.dtype == torch.float64
    torch.testing.assert_close(as_double.float(), before, atol=1e-4, rtol=1e-4)


def test_a_cache_filled_in_inference_mode_does_not_break_a_later_backward(tiny_checkpoint, audio):
    classifier = GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).eval()
    with torch.inference_mode():
        classifier(**audio)
    values = audio["input_values"].clone().requires_grad_(True)
    loss = classifier(values, audio["audio_attention_mask"], labels=torch.tensor([0, 3])).loss
    loss.backward()  # "Inference tensors cannot be saved for backward" before the fix
    assert values.grad is not None and values.grad.abs().sum() > 0


# ----- temperatures ----------------------------------------------------------------------------------------------


def test_a_temperature_above_the_cap_still_gets_a_gradient_and_comes_back(tmp_path):
    torch.manual_seed(0)
    model = GEmoClapModel(tiny_config(loss_type="emo")).train()
    model.set_prompts(tiny_processor(tmp_path).tokenizer)
    cap = math.log(100.0)
    with torch.no_grad():
        model.logit_scale_audio.fill_(cap + 1.0)
        model.logit_scale_text.fill_(cap + 1.0)
    assert model.logit_scales[0].item() == pytest.approx(100.0)
    values = torch.stack([torch.tensor(random_clip(0.5, seed=s)) for s in range(4)])
    model(values, emotion_labels=torch.tensor([0, 1, 0, 1])).loss.backward()
    assert model.logit_scale_audio.grad.abs() > 0 and model.logit_scale_text.grad.abs() > 0  # not killed by the cap
    model.clamp_logit_scales_()
    assert model.logit_scale_audio.item() == pytest.approx(cap) and model.logit_scale_text.item() == pytest.approx(cap)


def test_label_cache_is_filled_once_per_evaluation_under_autocast(tiny_checkpoint, audio):
    """Under bf16 autocast (the Trainer's --bf16) the cached embeddings are bf16: still one text pass in all."""
    classifier = GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).eval()
    calls = []
    original = classifier.gemo_clap.text_model.forward
    classifier.gemo_clap.text_model.forward = lambda *a, **k: calls.append(1) or original(*a, **k)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        first = classifier(**audio).logits
        for _ in range(2):
            torch.testing.assert_close(classifier(**audio).logits, first)
    assert len(calls) == 1


def test_the_usual_hf_relabelling_call_with_num_labels_works(tiny_checkpoint, audio):
    """AutoModelForAudioClassification.from_pretrained(path, num_labels=N, id2label=..., label2id=...), as the HF
    audio-classification guide writes it: transformers checks num_labels before it applies id2label."""
    id2label = {0: "angry", 1: "calm", 2: "sad"}
    classifier = AutoModelForAudioClassification.from_pretrained(
        tiny_checkpoint, num_labels=3, id2label=id2label, label2id={name: i for i, name in id2label.items()}
    ).eval()
    assert classifier.config.emotion_labels == ["angry", "calm", "sad"]
    with torch.no_grad():
        assert classifier(**audio).logits.shape == (2, 3)
    assert GEmoClapConfig(label2id={"calm": 0, "angry": 1}).emotion_labels == ["calm", "angry"]
