"""What transformers' common model tests expect of every model, checked on GEmo-CLAP's two classes.

Loading keywords, `return_dict`, unknown arguments, the audio-mask name users know, one label set, the
transformers 5 feature-method contract, the towers' hidden states and attentions (as arguments and from the config),
eager and SDPA attention agreeing, gradients for every trainable parameter (also under DDP with gradient
checkpointing, 2 processes), `torch.export`, a label cache that never goes stale, and temperatures that cannot stick
at their cap. docs/architecture.md lists which transformers conventions hold and which differ on purpose.
"""

import json
import math

import pytest
import torch
from transformers import AutoModelForAudioClassification, AutoProcessor
from transformers.modeling_outputs import BaseModelOutputWithPooling, ModelOutput

from gemo_clap_hf import GEmoClapConfig, GEmoClapForAudioClassification, GEmoClapModel
from tests.helpers.classifier_ddp_check import launch as launch_classifier_ddp
from tests.helpers.tiny_models import random_clip, save_tiny_checkpoint, tiny_config, tiny_processor


@pytest.fixture(scope="module")
def processor(tiny_checkpoint):
    return AutoProcessor.from_pretrained(tiny_checkpoint)


@pytest.fixture(scope="module")
def audio(processor):
    return processor(audio=[random_clip(1.0), random_clip(0.4, seed=5)], sampling_rate=16000, return_tensors="pt")


@pytest.fixture(scope="module")
def deep_checkpoint(tmp_path_factory):
    """A 3-layer audio tower beside a 2-layer text tower: a count taken from the wrong tower shows."""
    return save_tiny_checkpoint(tmp_path_factory.mktemp("deep") / "model", audio_overrides={"num_hidden_layers": 3})


@pytest.fixture(scope="module")
def texts(processor):
    """Texts of different token counts: a padded text batch."""
    return processor.tokenizer(
        ["happy", "a person speaking in a sad voice", "angry"], padding=True, return_tensors="pt"
    )


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
        loss, logits_per_audio, logits_per_text, audio_embeds, text_embeds, audio_tower = dual(
            **audio, **labels, return_dict=False
        )
        logits, classifier_embeds = classifier(**audio, return_dict=False)  # SL: no gender_logits
    last_hidden_state, pooled = audio_tower  # the audio tower's output, as a tuple too (no hidden states asked)
    assert torch.equal(last_hidden_state, out.audio_model_output.last_hidden_state) and torch.equal(
        pooled, audio_embeds
    )
    assert torch.equal(loss, out.loss) and torch.equal(logits_per_audio, out.logits_per_audio)
    assert torch.equal(audio_embeds, out.audio_embeds) and torch.equal(text_embeds, out.text_embeds)
    assert torch.equal(logits_per_text, out.logits_per_text) and torch.equal(logits, classifier(**audio).logits)
    assert torch.allclose(classifier_embeds, audio_embeds, atol=1e-6)


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


# ----- hidden states and attentions (transformers' ModelTesterMixin) ---------------------------------------------


def test_both_classes_return_the_towers_hidden_states_and_attentions(deep_checkpoint, audio, texts):
    dual = GEmoClapModel.from_pretrained(deep_checkpoint, attn_implementation="eager").eval()  # sdpa: no attentions
    classifier = GEmoClapForAudioClassification.from_pretrained(deep_checkpoint, attn_implementation="eager").eval()
    audio_layers, text_layers = dual.config.audio_config.num_hidden_layers, dual.config.text_config.num_hidden_layers
    assert (audio_layers, text_layers) == (3, 2)
    asked = {"output_hidden_states": True, "output_attentions": True}
    with torch.no_grad():
        tower = dual.audio_model(audio["input_values"], attention_mask=audio["audio_attention_mask"], **asked)
        out = dual(**audio, **texts, **asked)
        prompts_only = dual(**audio, output_hidden_states=True)
        classified = classifier(**audio, **asked)
        plain = dual(**audio, **texts)
        plain_prompts = dual(**audio)
    for result in (out.audio_model_output, classified):
        assert len(result.hidden_states) == audio_layers + 1 and len(result.attentions) == audio_layers
        for got, expected in zip(result.hidden_states + result.attentions, tower.hidden_states + tower.attentions):
            torch.testing.assert_close(got, expected)
    frames = tower.last_hidden_state.shape[1]
    assert classified.attentions[0].shape == (2, dual.config.audio_config.num_attention_heads, frames, frames)
    text_out = out.text_model_output
    assert len(text_out.hidden_states) == text_layers + 1 and len(text_out.attentions) == text_layers
    assert text_out.hidden_states[0].shape[:2] == texts["input_ids"].shape
    torch.testing.assert_close(text_out.pooler_output, out.text_embeds)
    # Without input_ids the texts are the emotion label prompts: their tower outputs when asked for.
    assert prompts_only.text_model_output.hidden_states[0].shape[0] == len(dual.config.emotion_labels)
    torch.testing.assert_close(prompts_only.text_embeds, dual.label_embeddings("emotion"))
    assert prompts_only.text_model_output.attentions is None
    # Not asked for: nothing extra, and the cached prompt table is used.
    assert plain.audio_model_output.hidden_states is None and plain.text_model_output.attentions is None
    assert plain_prompts.text_model_output is None and classifier(**audio).hidden_states is None


@pytest.mark.parametrize("where", ["model config", "tower sub-configs"])
def test_config_flags_are_the_default_of_every_entry_point(deep_checkpoint, audio, texts, where):
    """As ModelTesterMixin sets them: `config.output_hidden_states = True` (and on the sub-configs), no argument."""
    dual = GEmoClapModel.from_pretrained(deep_checkpoint, attn_implementation="eager").eval()
    classifier = GEmoClapForAudioClassification.from_pretrained(deep_checkpoint, attn_implementation="eager").eval()
    for config in (dual.config, classifier.config):
        for target in [config] if where == "model config" else [config.audio_config, config.text_config]:
            target.output_hidden_states = True
            target.output_attentions = True
    with torch.no_grad():
        audio_out = dual.get_audio_features(**audio)
        text_out = dual.get_text_features(**texts)
        out = dual(**audio, **texts)
        classified = classifier(**audio)
        refused = dual.get_audio_features(**audio, output_hidden_states=False, output_attentions=False)
    for result, layers in ((audio_out, 3), (text_out, 2), (out.audio_model_output, 3), (out.text_model_output, 2)):
        assert len(result.hidden_states) == layers + 1 and len(result.attentions) == layers
    assert len(classified.hidden_states) == 4 and len(classified.attentions) == 3
    assert refused.hidden_states is None and refused.attentions is None  # the argument comes first


def test_windowed_clips_return_hidden_states_per_window_row(deep_checkpoint):
    """Rows are windows encoded `window_batch_size` at a time (each chunk cut to its longest window): the tower's
    outputs come back one row per window, zero-padded to the full input's frames; the embedding is per clip."""
    dual = GEmoClapModel.from_pretrained(deep_checkpoint, attn_implementation="eager").eval()
    dual.window_batch_size = 1
    torch.manual_seed(0)
    values, mask = torch.randn(3, 8000), torch.ones(3, 8000, dtype=torch.long)
    mask[1, 3000:] = 0
    with torch.no_grad():
        out = dual.get_audio_features(values, mask, torch.tensor([0, 0, 1]), output_hidden_states=True)
        whole = dual.audio_model(values, attention_mask=mask, output_hidden_states=True)  # all rows in one call
        unasked = dual.get_audio_features(values, mask, torch.tensor([0, 0, 1]))
    frames = whole.last_hidden_state.shape[1]
    valid = dual._frame_mask(mask, frames)
    assert out.pooler_output.shape == (2, dual.config.projection_dim) and len(out.hidden_states) == 4
    for got, expected in zip(out.hidden_states, whole.hidden_states):
        assert got.shape == expected.shape == (3, frames, dual.config.audio_config.hidden_size)
        torch.testing.assert_close(got[valid], expected[valid], atol=1e-5, rtol=1e-4)
        assert not got[1, int(valid[1].sum()) :].any()  # the short window's chunk: zeros past its end
    torch.testing.assert_close(out.last_hidden_state, out.hidden_states[-1])
    assert unasked.last_hidden_state is None and unasked.hidden_states is None


def _nested_tuple(output) -> tuple:
    """`output`'s set fields in declaration order, tower outputs as tuples: written out here, not `to_tuple()`."""
    fields = [getattr(output, name) for name in type(output).__dataclass_fields__]
    return tuple(
        _nested_tuple(value) if isinstance(value, ModelOutput) else value for value in fields if value is not None
    )


def _assert_same_nesting(got, expected) -> None:
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected)
        for got_item, expected_item in zip(got, expected):
            _assert_same_nesting(got_item, expected_item)
    else:
        assert isinstance(got, torch.Tensor) and torch.equal(got, expected)


@pytest.mark.parametrize(
    "asked", [{}, {"output_hidden_states": True}, {"output_hidden_states": True, "output_attentions": True}]
)
def test_outputs_under_return_dict_false_equal_the_dicts(deep_checkpoint, audio, texts, asked):
    """transformers' `test_model_outputs_equivalence`: the tuple holds the dict's values, nested outputs as tuples."""
    dual = GEmoClapModel.from_pretrained(deep_checkpoint, attn_implementation="eager").eval()
    classifier = GEmoClapForAudioClassification.from_pretrained(deep_checkpoint, attn_implementation="eager").eval()
    labels = {"emotion_labels": torch.tensor([1, 2]), "gender_labels": torch.tensor([0, 1])}
    calls = [
        (dual, {**audio, **texts, **labels}),
        (dual, {**audio}),
        (classifier, {**audio, "labels": torch.tensor([3, 0])}),
    ]
    for model, inputs in calls:
        with torch.no_grad():
            as_dict = model(**inputs, **asked)
            as_tuple = model(**inputs, **asked, return_dict=False)
        _assert_same_nesting(as_tuple, _nested_tuple(as_dict))


@pytest.mark.parametrize(
    "audio_preset, sdpa",
    [("hubert-base-ls960", "sdpa"), ("wavlm-base-plus", {"audio_config": "eager", "text_config": "sdpa"})],
    ids=["hubert-roberta", "wavlm-roberta"],
)
def test_eager_and_sdpa_attention_agree_on_padded_batches(tmp_path, processor, texts, audio_preset, sdpa):
    """WavLM has no SDPA attention in transformers (its relative position bias): its tower stays eager and the text
    tower is compared; HuBERT (group-norm, as hubert-base-ls960) compares both towers."""
    folder = save_tiny_checkpoint(tmp_path / "model", audio_type=audio_preset)
    eager = GEmoClapModel.from_pretrained(folder, attn_implementation="eager").eval()
    fast = GEmoClapModel.from_pretrained(folder, attn_implementation=sdpa).eval()
    assert fast.text_model.config._attn_implementation == "sdpa"
    assert (fast.audio_model.config._attn_implementation == "sdpa") == (audio_preset != "wavlm-base-plus")
    clips = [random_clip(0.9, seed=1), random_clip(0.3, seed=2), random_clip(0.6, seed=3)]
    batch = processor(audio=clips, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        outputs = [model(**batch, **texts, output_hidden_states=True) for model in (eager, fast)]
        prompts = [model.label_embeddings("emotion") for model in (eager, fast)]  # padded prompts too
    close = {"atol": 1e-5, "rtol": 1e-4}
    for name in ("audio_embeds", "text_embeds", "logits_per_audio", "logits_per_text"):
        torch.testing.assert_close(getattr(outputs[1], name), getattr(outputs[0], name), **close)
    torch.testing.assert_close(prompts[1], prompts[0], **close)
    frames = eager._frame_mask(batch["audio_attention_mask"], outputs[0].audio_model_output.last_hidden_state.shape[1])
    tokens = texts["attention_mask"].bool()
    for tower, valid in (("audio_model_output", frames), ("text_model_output", tokens)):  # padded positions differ
        for got, expected in zip(getattr(outputs[1], tower).hidden_states, getattr(outputs[0], tower).hidden_states):
            torch.testing.assert_close(got[valid], expected[valid], **close)


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


@pytest.mark.parametrize("setup", ["built", "loaded, checkpointed"])
@pytest.mark.parametrize("cls", [GEmoClapModel, GEmoClapForAudioClassification])
def test_every_trainable_parameter_gets_a_gradient(tmp_path, cls, setup):
    """DDP without find_unused_parameters (the Trainer's choice under gradient checkpointing) needs this. Loading
    matters: transformers' loader re-creates every parameter as trainable, so a freeze set in `__init__` only is lost.
    """
    torch.manual_seed(0)
    if setup == "built":
        model = cls(tiny_config(loss_type="ml"))
        model.set_prompts(tiny_processor(tmp_path).tokenizer)
    else:
        loader = AutoModelForAudioClassification if cls is GEmoClapForAudioClassification else cls
        model = loader.from_pretrained(save_tiny_checkpoint(tmp_path / "model", loss_type="ml"))
        model.activation_checkpointing_enable()
    model.train()
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    # The classifier never computes text→audio logits: the text temperature is frozen, with the reason in its doc.
    assert frozen == ({"gemo_clap.logit_scale_text"} if cls is GEmoClapForAudioClassification else set())
    values = torch.tensor(random_clip(0.6))[None].repeat(4, 1)
    values[2:] = torch.tensor(random_clip(0.6, seed=3))
    if cls is GEmoClapModel:
        loss = model(values, emotion_labels=torch.tensor([0, 1, 2, 3]), gender_labels=torch.tensor([0, 1, 1, 0])).loss
    else:
        loss = model(values, labels=torch.tensor([0, 1, 2, 3])).loss
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    text_model = getattr(model, "gemo_clap", model).text_model  # trained through the label prompts, also here
    assert text_model.encoder.layer[-1].output.dense.weight.grad.abs().sum() > 0
    assert getattr(model, "gemo_clap", model).text_model.pooler is None  # built without the unused pooler


@pytest.mark.slow  # a 2-process `accelerate launch`
def test_two_process_classifier_fine_tuning_with_gradient_checkpointing_completes(tmp_path, tiny_checkpoint):
    """The HF audio-classification recipe (plain Trainer, AutoModelForAudioClassification) on 2 processes with the
    users' `gradient_checkpointing=True`: DDP runs without `find_unused_parameters`, so before the text temperature
    was frozen after loading too, the second step failed ("Expected to have finished reduction")."""
    result = launch_classifier_ddp(
        tiny_checkpoint, tmp_path / "seen.json", tmp_path / "run", "--flag", "gradient_checkpointing"
    )
    assert result.returncode == 0, result.stderr[-4000:]
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["world_size"] == 2 and seen["global_step"] == 3
    assert seen["find_unused_parameters"] is False and seen["towers_checkpointed"] == [True, True]
    assert seen["frozen"] == ["gemo_clap.logit_scale_text"] and seen["frozen_unchanged"]


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
    assert classifier.gemo_clap.prompt_table._cache == {}  # tracing left no fake tensors in the cache
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
