"""GEmoClapModel / GEmoClapForAudioClassification on tiny random towers: round trips, towers, gradients, padding."""

import json

import pytest
import torch
from transformers import AutoModel, AutoModelForAudioClassification, AutoProcessor, pipeline

from gemo_clap_hf import GEmoClapFeatureExtractor, GEmoClapForAudioClassification, GEmoClapModel, GEmoClapProcessor
from tests.helpers.tiny_models import (
    make_bert_tokenizer,
    make_roberta_tokenizer,
    random_clip,
    tiny_audio_config,
    tiny_config,
    tiny_processor,
    tiny_text_config,
)


def batch_for(processor, clips, emotions=("happy", "sad"), genders=("female", "male"), texts=True):
    """Audio, label ids and (with `texts`) each clip's emotion prompt as explicit text inputs."""
    inputs = processor(audio=clips, text=list(emotions) if texts else None, sampling_rate=16000, return_tensors="pt")
    labels = {
        "emotion_labels": torch.tensor([["neutral", "happy", "sad", "angry"].index(e) for e in emotions]),
        "gender_labels": torch.tensor([["female", "male"].index(g) for g in genders]),
    }
    return {**inputs, **labels}


def test_save_and_load_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = GEmoClapModel(tiny_config()).eval()
    processor = tiny_processor(tmp_path / "src")
    model.set_prompts(processor.tokenizer)
    model.save_pretrained(tmp_path / "ckpt")
    processor.save_pretrained(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "model.safetensors").exists()
    assert not list((tmp_path / "ckpt").glob("*.bin"))

    loaded = GEmoClapModel.from_pretrained(tmp_path / "ckpt").eval()
    loaded_processor = GEmoClapProcessor.from_pretrained(tmp_path / "ckpt")
    inputs = batch_for(processor, [random_clip(1.0), random_clip(0.6, seed=1)])
    reloaded_inputs = batch_for(loaded_processor, [random_clip(1.0), random_clip(0.6, seed=1)])
    for key in inputs:
        torch.testing.assert_close(inputs[key], reloaded_inputs[key], rtol=0, atol=0)
    with torch.no_grad():
        before, after = model(**inputs), loaded(**inputs)
    for field in ("loss", "logits_per_audio", "logits_per_text", "audio_embeds", "text_embeds"):
        torch.testing.assert_close(getattr(before, field), getattr(after, field), rtol=0, atol=0)


def test_processor_settings_survive_the_round_trip(tmp_path):
    """Non-default feature-extractor settings come back from disk (defaults would hide a dropped field)."""
    tokenizer = tiny_processor(tmp_path / "src").tokenizer
    extractor = GEmoClapFeatureExtractor(do_normalize=False, min_length=800, max_length_s=1.0, pad_short_clips=False)
    GEmoClapProcessor(extractor, tokenizer).save_pretrained(tmp_path / "ckpt")
    loaded = AutoProcessor.from_pretrained(tmp_path / "ckpt")
    assert isinstance(loaded, GEmoClapProcessor) and isinstance(loaded.feature_extractor, GEmoClapFeatureExtractor)
    assert loaded.feature_extractor.to_dict() == extractor.to_dict()
    clip = random_clip(2.5, seed=3)  # three 1 s windows
    original = GEmoClapProcessor(extractor, tokenizer)(audio=clip, text="sad", sampling_rate=16000, return_tensors="pt")
    reloaded = loaded(audio=clip, text="sad", sampling_rate=16000, return_tensors="pt")
    assert original.keys() == reloaded.keys() and original["clip_index"].tolist() == [0, 0, 0]
    for key in original:
        torch.testing.assert_close(reloaded[key], original[key], rtol=0, atol=0)


def test_embeddings_are_normalised_and_logits_are_scaled_similarities(tiny_checkpoint):
    model = GEmoClapModel.from_pretrained(tiny_checkpoint).eval()
    processor = AutoProcessor.from_pretrained(tiny_checkpoint)
    inputs = batch_for(processor, [random_clip(0.8), random_clip(0.5, seed=2)])
    with torch.no_grad():
        out = model(**inputs)
    torch.testing.assert_close(out.audio_embeds.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(out.text_embeds.norm(dim=-1), torch.ones(2))
    scale = model.logit_scale_audio.exp()
    torch.testing.assert_close(out.logits_per_audio, scale * out.audio_embeds @ out.text_embeds.T)
    assert scale.item() == pytest.approx(1 / 0.07, rel=1e-5)
    features = model.get_audio_features(inputs["input_values"], inputs["audio_attention_mask"])
    torch.testing.assert_close(features.pooler_output, out.audio_embeds)


def test_a_clip_embeds_the_same_alone_and_padded_in_a_batch(tiny_checkpoint):
    model = GEmoClapModel.from_pretrained(tiny_checkpoint).eval()
    processor = AutoProcessor.from_pretrained(tiny_checkpoint)
    short, long = random_clip(0.7, seed=3), random_clip(2.1, seed=4)
    alone = processor(audio=short, sampling_rate=16000, return_tensors="pt")
    batched = processor(audio=[short, long], sampling_rate=16000, return_tensors="pt")
    assert batched["input_values"].shape[1] == 3 * alone["input_values"].shape[1]
    with torch.no_grad():
        embed_alone = model.get_audio_features(alone["input_values"], alone["audio_attention_mask"]).pooler_output
        embed_batched = model.get_audio_features(batched["input_values"], batched["audio_attention_mask"]).pooler_output
        embed_unmasked = model.get_audio_features(batched["input_values"]).pooler_output
    torch.testing.assert_close(embed_batched[0], embed_alone[0], atol=1e-4, rtol=0)
    # Without the mask the padding leaks into the mean: the test above would notice a broken mask.
    assert (embed_unmasked[0] - embed_alone[0]).abs().max() > 1e-3


TOWERS = [("wavlm", "roberta"), ("hubert", "bert"), ("wav2vec2", "bert"), ("data2vec-audio", "bert")]


@pytest.mark.parametrize("audio_type, text_type", TOWERS)
def test_from_audio_text_pretrained_keeps_the_pretrained_towers(tmp_path, audio_type, text_type):
    torch.manual_seed(1)
    audio_tower = AutoModel.from_config(tiny_audio_config(audio_type)).eval()
    text_tower = AutoModel.from_config(tiny_text_config(text_type)).eval()
    audio_tower.save_pretrained(tmp_path / "audio")
    text_tower.save_pretrained(tmp_path / "text")
    tokenizer = (make_roberta_tokenizer if text_type == "roberta" else make_bert_tokenizer)(tmp_path / "text")

    model = GEmoClapModel.from_audio_text_pretrained(
        str(tmp_path / "audio"), str(tmp_path / "text"), loss_type="sl", projection_dim=16
    ).eval()
    assert model.config.audio_config.model_type == audio_type and model.config.text_config.model_type == text_type
    assert (model.config.loss_type, model.config.projection_dim) == ("sl", 16)
    assert model.has_prompts  # tokenised with the text encoder's own tokenizer
    clip = torch.tensor(random_clip(0.5))[None]
    words = tokenizer(["sad"], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model.audio_model(clip).last_hidden_state, audio_tower(clip).last_hidden_state)
        torch.testing.assert_close(model.text_model(**words).last_hidden_state, text_tower(**words).last_hidden_state)
        out = model(input_values=clip, **words, emotion_labels=torch.tensor([2]), gender_labels=torch.tensor([0]))
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize("loss_type", ["emo", "sl", "ml"])
def test_gradients_reach_both_towers_projections_and_temperatures(tmp_path, loss_type):
    torch.manual_seed(2)
    model = GEmoClapModel(tiny_config(loss_type=loss_type)).train()
    processor = tiny_processor(tmp_path)
    model.set_prompts(processor.tokenizer)
    inputs = batch_for(
        processor,
        [random_clip(0.6, seed=s) for s in range(4)],
        emotions=("happy", "sad", "happy", "angry"),
        genders=("female", "male", "male", "female"),
        texts=False,
    )
    model(**inputs).loss.backward()
    parts = {
        "audio tower": model.audio_model.encoder,
        "text tower": model.text_model.encoder,
        "audio projection": model.audio_projection,
        "text projection": model.text_projection,
    }
    for name, part in parts.items():
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters()), name
    assert model.logit_scale_audio.grad.abs() > 0 and model.logit_scale_text.grad.abs() > 0


@pytest.mark.parametrize("loss_type", ["emo", "sl", "ml"])
def test_loss_from_the_label_table_equals_the_loss_over_one_prompt_per_clip(tmp_path, loss_type):
    """The text tower encodes each label's prompt once (the table) and rows are indexed by label id: the same loss
    as encoding every clip's own prompt, computed here independently by test_losses' loop reference (DESIGN.md's
    formulas, not `gemo_clap_loss`)."""
    from tests.model.test_losses import reference_loss

    torch.manual_seed(4)
    model = GEmoClapModel(tiny_config(loss_type=loss_type)).train()
    processor = tiny_processor(tmp_path)
    model.set_prompts(processor.tokenizer)
    emotions = ("happy", "sad", "happy", "happy", "sad", "angry")
    genders = ("female", "male", "male", "female", "female", "male")
    inputs = batch_for(processor, [random_clip(0.5, seed=s) for s in range(6)], emotions, genders, texts=False)
    calls = []
    original = model.text_model.forward
    model.text_model.forward = lambda *a, **k: calls.append(k["input_ids"].shape[0]) or original(*a, **k)
    out = model(**inputs)
    model.text_model.forward = original
    assert calls == ([4, 2] if loss_type == "ml" else [4])  # the 4 emotion prompts (and the 2 gender prompts)
    assert out.logits_per_audio.shape == (6, 4)

    def per_clip(texts):
        tokens = processor.tokenizer(list(texts), padding=True, return_tensors="pt")
        return model.get_text_features(tokens["input_ids"], tokens["attention_mask"]).pooler_output

    scale_audio, scale_text = (scale.item() for scale in model.logit_scales)
    with torch.no_grad():
        expected = reference_loss(
            out.audio_embeds.double(),
            per_clip(emotions).double(),
            per_clip(genders).double(),
            inputs["emotion_labels"].tolist(),
            inputs["gender_labels"].tolist(),
            scale_audio,
            scale_text,
            loss_type,
            model.config.alpha_e,
            model.config.target_normalization,
        )
    assert out.loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_gradient_checkpointing_and_frozen_feature_encoder_reach_the_towers(tmp_path):
    torch.manual_seed(3)
    model = GEmoClapModel(tiny_config()).train()
    processor = tiny_processor(tmp_path)
    model.set_prompts(processor.tokenizer)
    inputs = batch_for(processor, [random_clip(0.6), random_clip(0.6, seed=1)])
    reference = model(**inputs).loss
    model.activation_checkpointing_enable()  # transformers 5's name for gradient_checkpointing_enable
    for tower in (model.audio_model, model.text_model):
        assert any(getattr(module, "gradient_checkpointing", False) for module in tower.modules())
    model.freeze_feature_encoder()
    assert not any(p.requires_grad for p in model.audio_model.feature_extractor.parameters())
    loss = model(**inputs).loss
    torch.testing.assert_close(loss, reference)
    loss.backward()
    assert all(p.grad is None for p in model.audio_model.feature_extractor.parameters())
    assert model.audio_model.encoder.layers[0].attention.k_proj.weight.grad is not None


def test_classification_logits_follow_id2label_and_match_the_dual_encoder(tiny_checkpoint):
    classifier = GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).eval()
    dual = GEmoClapModel.from_pretrained(tiny_checkpoint).eval()
    processor = AutoProcessor.from_pretrained(tiny_checkpoint)
    audio = processor(audio=[random_clip(1.0), random_clip(0.4, seed=5)], sampling_rate=16000, return_tensors="pt")
    prompts = processor.tokenizer(classifier.config.prompts(), padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = classifier(**audio).logits
        expected = dual(**audio, **prompts).logits_per_audio  # 2 clips × 4 label prompts
        from_table = dual(**audio).logits_per_audio  # no texts: the model's own label table
    assert logits.shape == (2, 4)
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(from_table, expected)


def test_label_logits_score_emotion_by_default_and_gender_on_request_in_the_embeddings_dtype(ml_checkpoint):
    """`label_logits` (the public one-audio-pass scorer) against the text tower run on each kind's prompts: emotion
    unless told otherwise, gender with "gender", on the classifier as on the dual encoder, in the audio's dtype."""
    classifier = GEmoClapForAudioClassification.from_pretrained(ml_checkpoint).eval()
    processor = AutoProcessor.from_pretrained(ml_checkpoint)
    config, dual = classifier.config, classifier.gemo_clap
    embeds = torch.nn.functional.normalize(
        torch.randn(3, config.projection_dim, generator=torch.manual_seed(0)), dim=-1
    )
    with torch.no_grad():
        for kind, labels in (("emotion", config.emotion_labels), ("gender", config.gender_labels)):
            prompts = processor.tokenizer(config.prompts(list(labels)), padding=True, return_tensors="pt")
            text = dual.get_text_features(**prompts).pooler_output
            expected = dual.logit_scale_audio.exp() * embeds @ text.T
            torch.testing.assert_close(classifier.label_logits(embeds, kind), expected)
            torch.testing.assert_close(dual.label_logits(embeds, kind), expected)
        torch.testing.assert_close(classifier.label_logits(embeds), classifier.label_logits(embeds, "emotion"))
        torch.testing.assert_close(dual.label_logits(embeds), dual.label_logits(embeds, "emotion"))
        assert classifier.label_logits(embeds.bfloat16(), "gender").dtype == torch.bfloat16


ENTRY_POINTS = (GEmoClapModel, GEmoClapForAudioClassification, AutoModel, AutoModelForAudioClassification)
PIPELINE_TASKS = ("audio-classification", "zero-shot-audio-classification")
SAVING_CLASSES = ("GEmoClapModel", "GEmoClapForAudioClassification")


def _dual(model):
    """The dual encoder inside whatever an entry point returned (the classifier wraps one)."""
    return model.gemo_clap if isinstance(model, GEmoClapForAudioClassification) else model


@pytest.fixture(scope="module")
def folders_saved_by(tiny_checkpoint, tmp_path_factory):
    """The same weights saved once by each model class, each folder with its processor."""
    from_classifier = tmp_path_factory.mktemp("saved_by_classifier")
    GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).save_pretrained(from_classifier)
    AutoProcessor.from_pretrained(tiny_checkpoint).save_pretrained(from_classifier)
    return {"GEmoClapModel": tiny_checkpoint, "GEmoClapForAudioClassification": from_classifier}


@pytest.mark.parametrize("saved_by", SAVING_CLASSES)
def test_one_checkpoint_serves_every_entry_point_both_ways(folders_saved_by, tiny_checkpoint, saved_by):
    """Whichever class saved it, every loader and both pipelines get the same weights and audio embeddings."""
    folder = folders_saved_by[saved_by]
    auto_map = json.loads((folder / "config.json").read_text())["auto_map"]  # for trust_remote_code users
    assert auto_map["AutoModel"].endswith(".GEmoClapModel")
    assert auto_map["AutoModelForAudioClassification"].endswith(".GEmoClapForAudioClassification")

    reference = GEmoClapModel.from_pretrained(tiny_checkpoint).eval()
    clip = torch.tensor(random_clip(0.9, seed=6))[None]
    with torch.no_grad():
        expected = reference.get_audio_features(clip).pooler_output
    loaded = {loader.__name__: loader.from_pretrained(folder) for loader in ENTRY_POINTS}
    loaded.update({task: pipeline(task, model=str(folder)).model for task in PIPELINE_TASKS})
    expected_class = {
        "GEmoClapModel": GEmoClapModel,
        "AutoModel": GEmoClapModel,
        "zero-shot-audio-classification": GEmoClapModel,
    }
    for name, model in loaded.items():
        assert type(model) is expected_class.get(name, GEmoClapForAudioClassification), name
        dual = _dual(model).eval()
        for key, tensor in reference.state_dict().items():
            torch.testing.assert_close(dual.state_dict()[key], tensor, rtol=0, atol=0, msg=f"{name}: {key}")
        with torch.no_grad():
            torch.testing.assert_close(dual.get_audio_features(clip).pooler_output, expected, rtol=0, atol=0, msg=name)


def test_label_cache_is_rebuilt_when_text_weights_change(tiny_checkpoint):
    classifier = GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).eval()
    clip = torch.tensor(random_clip(0.5))[None]
    calls = []
    original = classifier.gemo_clap.text_model.forward
    classifier.gemo_clap.text_model.forward = lambda *a, **k: calls.append(1) or original(*a, **k)
    with torch.no_grad():
        first = classifier(clip).logits
        second = classifier(clip).logits
    assert len(calls) == 1 and torch.equal(first, second)  # cached: one text pass for two forwards

    # An optimizer step on the text tower invalidates the cache.
    optimizer = torch.optim.AdamW(classifier.gemo_clap.text_projection.parameters(), lr=0.5)
    classifier.train()
    loss = classifier(clip, labels=torch.tensor([1])).loss
    loss.backward()
    optimizer.step()
    classifier.eval()
    with torch.no_grad():
        after_step = classifier(clip).logits
    assert not torch.allclose(after_step, first)

    # load_state_dict back to the saved weights restores the original logits (cache rebuilt again).
    saved = GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).state_dict()
    classifier.load_state_dict(saved)
    with torch.no_grad():
        torch.testing.assert_close(classifier(clip).logits, first)


def test_pickle_weights_are_refused_unless_explicitly_allowed(tmp_path, tiny_checkpoint):
    import shutil

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_checkpoint, folder)
    model = GEmoClapModel.from_pretrained(folder)
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    refused = (
        r"holds only pickle weights \(pytorch_model\.bin\)\. GEmo-CLAP loads weights from safetensors only"
        r".*use_safetensors=False"
    )
    with pytest.raises(OSError, match=refused):
        GEmoClapModel.from_pretrained(folder)
    with pytest.raises(OSError, match=refused):
        AutoModelForAudioClassification.from_pretrained(folder)
    with pytest.raises(ValueError, match=refused):  # the pipeline wraps the loader's error but keeps its message
        pipeline("audio-classification", model=str(folder))
    (folder / "pytorch_model.bin").rename(tmp_path / "elsewhere.bin")
    with pytest.raises(OSError, match=r"no safetensors weights were found for .*pickled.*check the path"):
        GEmoClapModel.from_pretrained(folder)
    (tmp_path / "elsewhere.bin").rename(folder / "pytorch_model.bin")
    trusted = GEmoClapModel.from_pretrained(folder, use_safetensors=False)
    torch.testing.assert_close(trusted.logit_scale_audio, model.logit_scale_audio)
