"""GEmoClapTrainer on a tiny IEMOCAP-layout tree and tiny random towers, with the Trainer's defaults (fused AdamW
where torch has it): training and SER metrics, the label prompts it makes sure of, the temperatures (no weight decay,
clamped after every step) and the refusal of nn.DataParallel."""

import math

import numpy as np
import pytest
import torch
from transformers import TrainingArguments

from gemo_clap_hf import GEmoClapDataCollator, GEmoClapModel, GEmoClapTrainer
from gemo_clap_hf.data import load_corpus, split_by_fold
from tests.helpers.corpus_fixtures import make_iemocap_tree
from tests.helpers.tiny_models import tiny_config, tiny_processor
from tests.helpers.training_helpers import cpu_training_arguments

MAX_LOG_SCALE = math.log(100.0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = make_iemocap_tree(tmp_path_factory.mktemp("iemocap"), sessions=(1, 2), utterances_per_speaker=4)
    return load_corpus("iemocap", root)


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    return tiny_processor(tmp_path_factory.mktemp("tok"))


def _args(tmp_path, **overrides) -> TrainingArguments:
    return cpu_training_arguments(tmp_path, **{"max_steps": 1, "learning_rate": 1e-3, **overrides})


def _model(**config) -> GEmoClapModel:
    torch.manual_seed(0)
    return GEmoClapModel(tiny_config(**config))


@pytest.mark.parametrize("loss_type", ["emo", "sl", "ml"])
def test_trainer_trains_and_evaluates_with_ser_metrics(corpus, processor, tmp_path, loss_type):
    model = _model(loss_type=loss_type)
    config = model.config
    train, test = split_by_fold(corpus, "2")
    args = _args(
        tmp_path, max_steps=3, logging_steps=1, train_sampling_strategy="group_by_length", length_column_name="length"
    )
    trainer = GEmoClapTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=test,
        data_collator=GEmoClapDataCollator(processor, config, max_duration_s=0.3),
        processing_class=processor,
    )
    before = model.audio_projection.dense_in.weight.detach().clone()
    trainer.train()
    assert not torch.equal(before, model.audio_projection.dense_in.weight)
    metrics = trainer.evaluate()
    for key in ("eval_loss", "eval_uar", "eval_war", "eval_macro_f1", "eval_uar_female", "eval_uar_male"):
        assert key in metrics and np.isfinite(metrics[key]), key

    # The logits are s_a · cos(clip, emotion prompt) in label-id order, recomputed here from freshly tokenised
    # prompts (not the model's cached table), and the reported WAR is their accuracy.
    predictions = trainer.predict(test)
    batch = GEmoClapDataCollator(processor, config)([test[i] for i in range(len(test))])
    model.eval()
    with torch.no_grad():
        audio = model.get_audio_features(batch["input_values"], batch["audio_attention_mask"]).pooler_output
        prompts = processor.tokenizer(config.prompts(config.emotion_labels), padding=True, return_tensors="pt")
        text = model.get_text_features(prompts["input_ids"], prompts["attention_mask"]).pooler_output
        expected = model.logit_scale_audio.exp() * audio @ text.T
    np.testing.assert_allclose(predictions.predictions, expected.numpy(), atol=1e-4, rtol=1e-4)
    war = float((expected.argmax(-1) == batch["emotion_labels"]).float().mean())
    assert predictions.metrics["test_war"] == pytest.approx(war)


def test_collator_built_from_the_processor_alone_takes_the_trainers_model_config(corpus, processor, tmp_path):
    """DESIGN's `GEmoClapDataCollator(processor)`: the Trainer supplies the label sets of the model it trains."""
    model = _model(loss_type="ml", emotion_labels=("angry", "sad", "happy", "neutral"))
    collator = GEmoClapDataCollator(processor)
    trainer = GEmoClapTrainer(
        model=model, args=_args(tmp_path), train_dataset=corpus, data_collator=collator, processing_class=processor
    )
    assert collator.config is model.config
    batch = collator([corpus[i] for i in range(4)])
    assert batch["emotion_labels"].tolist() == [model.config.label2id[corpus[i]["emotion"]] for i in range(4)]
    trainer.train()


def test_evaluate_without_processing_class_takes_the_prompts_from_the_collators_processor(corpus, processor, tmp_path):
    """Issue 9.4: `evaluate()` crashed when only `data_collator=GEmoClapDataCollator(processor)` was given."""
    model = _model(loss_type="sl")
    assert not model.has_prompts
    trainer = GEmoClapTrainer(
        model=model, args=_args(tmp_path), eval_dataset=corpus, data_collator=GEmoClapDataCollator(processor)
    )
    assert model.has_prompts
    metrics = trainer.evaluate()
    assert np.isfinite(metrics["eval_loss"]) and 0.0 <= metrics["eval_uar"] <= 1.0


def test_a_processor_alone_gives_the_collator_and_the_prompts(corpus, processor, tmp_path):
    model = _model(loss_type="sl")
    trainer = GEmoClapTrainer(model=model, args=_args(tmp_path), train_dataset=corpus, processing_class=processor)
    assert isinstance(trainer.data_collator, GEmoClapDataCollator) and model.has_prompts
    trainer.train()


def test_no_tokenizer_anywhere_is_a_clear_error(corpus, processor, tmp_path):
    collator = GEmoClapDataCollator(processor.feature_extractor)  # audio only: no tokenizer to make prompts
    fix = r"no label prompts .* `processing_class=processor` .* `model.set_prompts\(tokenizer\)`"
    with pytest.raises(ValueError, match=fix):
        GEmoClapTrainer(model=_model(), args=_args(tmp_path), eval_dataset=corpus, data_collator=collator)


def test_temperatures_are_not_weight_decayed(corpus, processor, tmp_path):
    model = _model()
    trainer = GEmoClapTrainer(
        model=model, args=_args(tmp_path, weight_decay=0.1), train_dataset=corpus, processing_class=processor
    )
    optimizer = trainer.create_optimizer()
    by_id = {id(p): name for name, p in model.named_parameters()}
    decayed = {by_id[id(p)] for group in optimizer.param_groups if group["weight_decay"] > 0 for p in group["params"]}
    kept = {by_id[id(p)] for group in optimizer.param_groups if group["weight_decay"] == 0 for p in group["params"]}
    assert {"logit_scale_audio", "logit_scale_text"} <= kept
    assert not {name for name in decayed if "logit_scale" in name}
    assert "audio_projection.dense_in.weight" in decayed  # weight decay still reaches the other weights


def test_a_temperature_above_the_cap_comes_back_after_one_trainer_step(corpus, processor, tmp_path):
    model = _model()
    with torch.no_grad():
        model.logit_scale_audio.fill_(math.log(150.0))
        model.logit_scale_text.fill_(math.log(400.0))
    trainer = GEmoClapTrainer(model=model, args=_args(tmp_path), train_dataset=corpus, processing_class=processor)
    trainer.train()  # one step of the default optimizer: alone it would move a log-scale by about the lr, 1e-3
    if trainer.args.optim == "adamw_torch_fused":  # the default from torch 2.8: updates weights in place
        assert trainer.optimizer.param_groups[0]["fused"] is True
    assert model.logit_scale_audio.item() <= MAX_LOG_SCALE + 1e-6
    assert model.logit_scale_text.item() <= MAX_LOG_SCALE + 1e-6
    assert model.logit_scale_audio.requires_grad  # clamped in place: still a trained parameter


def test_a_single_process_seeing_several_gpus_is_refused(corpus, processor, tmp_path, monkeypatch):
    """Issue 9.6: plain `python train_gemo_clap.py` on a multi-GPU machine would get nn.DataParallel."""
    args = _args(tmp_path)
    assert args.n_gpu <= 1  # devices set up; now simulate a machine with 4 visible GPUs
    monkeypatch.setattr(args, "_n_gpu", 4)
    with pytest.raises(RuntimeError, match=r"sees 4 GPUs.*nn\.DataParallel.*`accelerate launch --multi_gpu"):
        GEmoClapTrainer(model=_model(), args=args, train_dataset=corpus, processing_class=processor)


@pytest.mark.parametrize("loss_type", ["sl", "ml"])
def test_a_test_corpus_without_genders_is_scored_by_an_sl_or_ml_model(corpus, processor, tmp_path, loss_type):
    """Cross-corpus: an SL/ML model evaluated on a corpus with no gender labels gets emotion metrics (no loss, no
    per-gender UAR) equal to the same evaluation with genders; training on such rows stays an error."""
    model = _model(loss_type=loss_type)
    _, test = split_by_fold(corpus, "2")
    genderless = test.map(lambda row: {"gender": ""})
    trainer = GEmoClapTrainer(
        model=model,
        args=_args(tmp_path),
        data_collator=GEmoClapDataCollator(processor, model.config),
        processing_class=processor,
    )
    with_genders = trainer.evaluate(test)
    without = trainer.evaluate(genderless)
    assert "eval_loss" in with_genders and "eval_uar_female" in with_genders
    assert "eval_loss" not in without and not [key for key in without if key.startswith("eval_uar_")]
    for key in ("eval_uar", "eval_war", "eval_macro_f1"):
        assert without[key] == pytest.approx(with_genders[key]), key
    with pytest.raises(ValueError, match="needs a `gender` for every row"):
        GEmoClapDataCollator(processor, model.config)([genderless[0], genderless[1]])
