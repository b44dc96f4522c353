"""GEmoClapDataCollator and GEmoClapTrainer on a tiny IEMOCAP-layout tree and tiny random towers."""

import numpy as np
import pytest
import torch
from transformers import TrainingArguments

from corpus_fixtures import make_iemocap_tree
from gemo_clap_hf import GEmoClapDataCollator, GEmoClapModel, GEmoClapTrainer
from gemo_clap_hf.data import load_corpus, split_by_fold
from tiny_models import random_clip, tiny_config, tiny_processor


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = make_iemocap_tree(tmp_path_factory.mktemp("iemocap"), sessions=(1, 2), utterances_per_speaker=4)
    return load_corpus("iemocap", root)


@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    return tiny_processor(tmp_path_factory.mktemp("tok"))


def test_collator_pads_audio_and_tokenises_prompts(corpus, processor):
    config = tiny_config(loss_type="ml")
    rows = [corpus[i] for i in range(4)]
    batch = GEmoClapDataCollator(processor, config)(rows)
    assert batch["input_values"].shape[0] == 4 and batch["audio_attention_mask"].shape == batch["input_values"].shape
    assert batch["audio_attention_mask"].sum(1).tolist() == [round(r["duration"] * 16000) for r in rows]
    assert batch["emotion_labels"].tolist() == [config.label2id[r["emotion"]] for r in rows]
    assert batch["gender_labels"].tolist() == [config.gender_labels.index(r["gender"]) for r in rows]
    decoded = processor.tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True)
    assert [text.strip() for text in decoded] == [r["emotion"] for r in rows]
    genders = processor.tokenizer.batch_decode(batch["gender_input_ids"], skip_special_tokens=True)
    assert [text.strip() for text in genders] == [r["gender"] for r in rows]


def test_collator_crops_only_for_training_and_rejects_unknown_labels(processor):
    config = tiny_config(loss_type="sl")
    rows = [{"audio": random_clip(2.0), "emotion": "sad", "gender": "male"},
            {"audio": {"array": random_clip(0.5), "sampling_rate": 16000}, "emotion": 3, "gender": 0}]
    collator = GEmoClapDataCollator(processor, config, max_duration_s=1.0)
    assert collator(rows)["input_values"].shape[1] == 16000
    assert collator.for_evaluation()(rows)["input_values"].shape[1] == 32000
    with pytest.raises(ValueError, match="'surprised' is not one of the model's labels"):
        collator([{"audio": random_clip(0.5), "emotion": "surprised", "gender": "male"}])
    with pytest.raises(ValueError, match="needs a `gender`"):
        collator([{"audio": random_clip(0.5), "emotion": "sad"}])


@pytest.mark.parametrize("loss_type", ["emo", "sl", "ml"])
def test_trainer_trains_and_evaluates_with_ser_metrics(corpus, processor, tmp_path, loss_type):
    torch.manual_seed(0)
    config = tiny_config(loss_type=loss_type)
    model = GEmoClapModel(config)
    train, test = split_by_fold(corpus, "2")
    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, per_device_eval_batch_size=4, max_steps=3,
        learning_rate=1e-3, report_to=[], save_strategy="no", logging_steps=1, use_cpu=True,
        train_sampling_strategy="group_by_length", length_column_name="length", seed=0,
    )
    trainer = GEmoClapTrainer(
        model=model, args=args, train_dataset=train, eval_dataset=test,
        data_collator=GEmoClapDataCollator(processor, config, max_duration_s=0.3), processing_class=processor,
    )
    before = model.audio_projection.dense_in.weight.detach().clone()
    trainer.train()
    assert not torch.equal(before, model.audio_projection.dense_in.weight)
    metrics = trainer.evaluate()
    for key in ("eval_loss", "eval_uar", "eval_war", "eval_macro_f1", "eval_uar_female", "eval_uar_male"):
        assert key in metrics and np.isfinite(metrics[key]), key

    # The reported WAR is the accuracy of prompt-similarity predictions, recomputed here independently.
    predictions = trainer.predict(test)
    collator = GEmoClapDataCollator(processor, config)
    batch = collator([test[i] for i in range(len(test))])
    model.eval()
    with torch.no_grad():
        audio = model.get_audio_features(batch["input_values"], batch["audio_attention_mask"])
        prompts = processor.tokenizer(config.prompts(), padding=True, return_tensors="pt")
        expected = (audio @ model.get_text_features(**prompts).T).argmax(-1)
    np.testing.assert_array_equal(predictions.predictions.argmax(-1), expected.numpy())
    war = float((expected == batch["emotion_labels"]).float().mean())
    assert predictions.metrics["test_war"] == pytest.approx(war)


def test_collator_built_from_the_processor_alone_takes_the_trainers_model_config(corpus, processor, tmp_path):
    """DESIGN's `GEmoClapDataCollator(processor)`: the Trainer supplies the label sets of the model it trains."""
    config = tiny_config(loss_type="ml", emotion_labels=("angry", "sad", "happy", "neutral"))
    collator = GEmoClapDataCollator(processor)
    with pytest.raises(ValueError, match="no model config"):
        collator([corpus[0]])
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=1, report_to=[],
                             save_strategy="no", use_cpu=True)
    trainer = GEmoClapTrainer(model=GEmoClapModel(config), args=args, train_dataset=corpus, data_collator=collator,
                              processing_class=processor)
    assert collator.config is config
    batch = collator([corpus[i] for i in range(4)])
    assert batch["emotion_labels"].tolist() == [config.label2id[corpus[i]["emotion"]] for i in range(4)]
    assert "gender_input_ids" in batch
    trainer.train()
