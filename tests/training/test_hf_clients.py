"""A GEmo-CLAP checkpoint in the Hugging Face clients users already run (issue 24).

- The feature extractor pads only when asked, so `DataCollatorWithPadding(feature_extractor)` (the Trainer's default
  collator for `processing_class=feature_extractor`) builds the audio mask, and batched logits equal one clip at a
  time: transformers' audio-classification example and task guide give the pipeline's metrics on the same weights.
- `datasets` Audio columns (torchcodec `AudioDecoder` values) and `{"array", "sampling_rate"}` dicts go through
  `load_audio`, the processor, the collator, both pipelines and `evaluate.evaluator("audio-classification")`.

evaluate 0.4.6 fails on any `Pipeline` object under transformers 5 (it reads `transformers.TFPreTrainedModel`,
which is gone), so the evaluator is given the model folder, as the README says.
"""

import numpy as np
import pytest
import torch
from transformers import (
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    pipeline,
)

from gemo_clap_hf import GEmoClapDataCollator, GEmoClapFeatureExtractor, GEmoClapProcessor
from gemo_clap_hf.data import load_audio
from gemo_clap_hf.feature_extraction_gemo_clap import resample
from tests.helpers.hf_client_flows import (
    RATE,
    audio_dataset,
    can_decode_audio_columns,
    example_transform,
    one_clip_at_a_time,
    pipeline_accuracy,
    task_guide_preprocess,
    train_as_the_example,
    write_clips,
)
from tests.helpers.tiny_models import random_clip
from tests.helpers.training_helpers import cpu_training_arguments

needs_audio_columns = pytest.mark.skipif(
    not can_decode_audio_columns(),
    reason="decoding `datasets` Audio columns needs torchcodec 0.13 and FFmpeg (pip install -e '.[test]', "
    "apt-get install ffmpeg)",
)


@pytest.fixture(scope="module")
def classifier(tiny_checkpoint):
    return AutoModelForAudioClassification.from_pretrained(tiny_checkpoint).eval()


@pytest.fixture(scope="module")
def extractor(tiny_checkpoint):
    return AutoFeatureExtractor.from_pretrained(tiny_checkpoint)


@pytest.fixture(scope="module")
def label_names(classifier):
    return [classifier.config.id2label[index] for index in range(classifier.config.num_labels)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return write_clips(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def arrays(clips):
    return [load_audio(path) for path in clips[0]]


@pytest.fixture(scope="module")
def dataset(clips, label_names):
    return audio_dataset(*clips, label_names)


def _args(tmp_path, **overrides) -> TrainingArguments:
    # remove_unused_columns=False, as the example's README says for GEmo-CLAP: the transform needs `audio`
    return cpu_training_arguments(tmp_path, **{"remove_unused_columns": False, **overrides})


# ----- padding only when asked -------------------------------------------------------------------------------------


def test_the_feature_extractor_pads_only_when_asked(extractor, arrays):
    lengths = [len(array) for array in arrays[:3]]
    unpadded = extractor(arrays[:3], sampling_rate=RATE)
    assert [len(row) for row in unpadded["input_values"]] == lengths
    assert [int(np.sum(mask)) for mask in unpadded["audio_attention_mask"]] == lengths
    padded = extractor(arrays[:3], sampling_rate=RATE, padding=True, return_tensors="pt")
    assert padded["input_values"].shape == (3, max(lengths))
    assert padded["audio_attention_mask"].sum(-1).tolist() == lengths
    with pytest.raises(ValueError, match="padding=True"):
        extractor(arrays[:3], sampling_rate=RATE, return_tensors="pt")


@pytest.mark.parametrize("kept", [["input_values"], ["input_values", "audio_attention_mask"]])
def test_data_collator_with_padding_gives_the_logits_of_one_clip_at_a_time(classifier, extractor, arrays, kept):
    """The example keeps only `input_values`; the task guide keeps every output (the mask too): both collate."""
    features = extractor(arrays, sampling_rate=RATE)
    rows = [{name: features[name][index] for name in kept} | {"label": index % 4} for index in range(len(arrays))]
    batch = DataCollatorWithPadding(extractor)(rows)
    assert batch["audio_attention_mask"].sum(-1).tolist() == [len(array) for array in arrays]
    with torch.no_grad():
        logits = classifier(**batch).logits.numpy()
    np.testing.assert_allclose(logits, one_clip_at_a_time(classifier, extractor, arrays), atol=1e-5, rtol=0)


# ----- transformers' example and task guide ------------------------------------------------------------------------


@needs_audio_columns
def test_example_transforms_and_trainer_give_the_pipelines_metrics(tiny_checkpoint, dataset, arrays, clips, tmp_path):
    """Train 2 steps and evaluate as the example does; then the pipeline on the same weights gives the same accuracy,
    and the evaluation logits are the clips' logits scored one at a time."""
    torch.manual_seed(0)
    model = AutoModelForAudioClassification.from_pretrained(tiny_checkpoint)
    extractor = AutoFeatureExtractor.from_pretrained(tiny_checkpoint)
    data = dataset.with_transform(example_transform(extractor))
    _, metrics, predictions = train_as_the_example(
        model, extractor, data, _args(tmp_path, max_steps=2, learning_rate=1e-3)
    )
    model.eval()
    np.testing.assert_allclose(predictions, one_clip_at_a_time(model, extractor, arrays), atol=1e-5, rtol=0)
    label_names = [model.config.id2label[index] for index in range(model.config.num_labels)]
    pipe = pipeline("audio-classification", model=model, feature_extractor=extractor)
    paths, labels = clips
    assert metrics["eval_accuracy"] == pytest.approx(pipeline_accuracy(pipe, paths, labels, label_names), abs=1e-12)
    column = list(dataset["audio"])
    assert metrics["eval_accuracy"] == pytest.approx(pipeline_accuracy(pipe, column, labels, label_names), abs=1e-12)


@needs_audio_columns
def test_task_guide_map_with_truncation_gives_the_logits_of_the_cut_clips(
    classifier, extractor, dataset, arrays, tmp_path
):
    encoded = dataset.map(task_guide_preprocess(extractor, max_length=RATE), batched=True, remove_columns=["audio"])
    assert [len(row) for row in encoded["input_values"]] == [min(len(array), RATE) for array in arrays]
    trainer = Trainer(model=classifier, args=_args(tmp_path), processing_class=extractor)
    logits = trainer.predict(encoded.remove_columns(["file"])).predictions
    expected = one_clip_at_a_time(classifier, extractor, [array[:RATE] for array in arrays])
    np.testing.assert_allclose(logits, expected, atol=1e-5, rtol=0)


# ----- datasets' Audio columns ---------------------------------------------------------------------------------------


@needs_audio_columns
def test_decoded_audio_values_read_as_the_files_do(tiny_checkpoint, dataset, arrays, clips):
    """`load_audio`, the processor, the collator and both pipelines take `AudioDecoder` values and array dicts."""
    column = list(dataset["audio"])
    assert type(column[0]).__name__ == "AudioDecoder"
    for decoder, array in zip(column, arrays):
        np.testing.assert_array_equal(load_audio(decoder), array)
    at_8k = resample(arrays[1], RATE, 8000)
    np.testing.assert_array_equal(load_audio({"array": at_8k, "sampling_rate": 8000}), resample(at_8k, 8000, RATE))

    processor = GEmoClapProcessor.from_pretrained(tiny_checkpoint)
    from_column = processor(audio=dataset["audio"], return_tensors="pt")
    from_arrays = processor(audio=arrays, sampling_rate=RATE, return_tensors="pt")
    for name in ("input_values", "audio_attention_mask"):
        torch.testing.assert_close(from_column[name], from_arrays[name], atol=0, rtol=0)

    classifier = AutoModelForAudioClassification.from_pretrained(tiny_checkpoint)
    collator = GEmoClapDataCollator(processor, classifier.config).for_evaluation()  # genders optional
    rows = [{"audio": audio, "emotion": label} for audio, label in zip(column, clips[1])]
    by_path = collator([{"audio": path, "emotion": label} for path, label in zip(*clips)])
    by_decoder = collator(rows)
    by_dict = collator([{"audio": {"array": array, "sampling_rate": RATE}, "emotion": 0} for array in arrays])
    for name in ("input_values", "audio_attention_mask"):
        torch.testing.assert_close(by_decoder[name], by_path[name], atol=0, rtol=0)
        torch.testing.assert_close(by_dict[name], by_path[name], atol=0, rtol=0)

    pipe = pipeline("audio-classification", model=str(tiny_checkpoint))
    for from_decoder, from_path in zip(pipe(column), pipe(clips[0])):
        assert [r["label"] for r in from_decoder] == [r["label"] for r in from_path]
        np.testing.assert_allclose([r["score"] for r in from_decoder], [r["score"] for r in from_path], atol=1e-6)
    zero_shot = pipeline("zero-shot-audio-classification", model=str(tiny_checkpoint))
    labels = ["calm", "angry"]
    by_decoder_scores = [r["score"] for r in zero_shot(column[2], candidate_labels=labels)]
    by_array_scores = [r["score"] for r in zero_shot(arrays[2], candidate_labels=labels)]
    np.testing.assert_allclose(by_decoder_scores, by_array_scores, atol=1e-6)


def test_a_clip_that_carries_its_rate_refuses_a_different_sampling_rate(extractor):
    clip = {"array": random_clip(0.5, sampling_rate=8000), "sampling_rate": 8000}
    assert len(extractor(clip)["input_values"][0]) == RATE // 2  # resampled from its own rate
    with pytest.raises(ValueError, match="carries its own sampling rate"):
        extractor(clip, sampling_rate=RATE)
    with pytest.raises(ValueError, match="array.*sampling_rate"):
        GEmoClapFeatureExtractor()({"path": "a.wav"})


@needs_audio_columns
def test_evaluator_over_a_decoded_audio_column_and_a_path_column(tiny_checkpoint, dataset, clips, label_names):
    """`evaluate.evaluator` with the package's local metric module, given the model folder (not a Pipeline: see the
    module docstring); its UAR is the pipeline's, computed here with numpy."""
    import evaluate

    from gemo_clap_hf.metrics import load_ser_metric

    pipe = pipeline("audio-classification", model=str(tiny_checkpoint))
    paths, labels = clips
    predicted = np.array([label_names.index(results[0]["label"]) for results in pipe(paths, top_k=1)])
    truth = np.array(labels)
    expected_uar = np.mean([np.mean(predicted[truth == label] == label) for label in np.unique(truth)])

    task = evaluate.evaluator("audio-classification")
    label2id = {name: index for index, name in enumerate(label_names)}
    for column in ("audio", "file"):
        results = task.compute(
            model_or_pipeline=str(tiny_checkpoint),
            data=dataset,
            metric=load_ser_metric(),
            input_column=column,
            label_column="label",
            label_mapping=label2id,
        )
        assert results["uar"] == pytest.approx(expected_uar, abs=1e-12), column


@needs_audio_columns
def test_a_corpus_cast_to_an_audio_column_trains(tmp_path):
    """`load_corpus(...)` rows hold paths; cast to `Audio(sampling_rate=16000)` they hold decoders, and the collator
    builds the same batches from them, so GEmoClapTrainer trains on either."""
    from datasets import Audio

    from gemo_clap_hf import GEmoClapModel, GEmoClapTrainer
    from gemo_clap_hf.data import load_corpus
    from tests.helpers.corpus_fixtures import make_iemocap_tree
    from tests.helpers.tiny_models import tiny_config, tiny_processor

    corpus = load_corpus("iemocap", make_iemocap_tree(tmp_path / "iemocap", sessions=(1,), utterances_per_speaker=2))
    decoded = corpus.cast_column("audio", Audio(sampling_rate=RATE))
    torch.manual_seed(0)
    model = GEmoClapModel(tiny_config())
    processor = tiny_processor(tmp_path / "tok")
    collator = GEmoClapDataCollator(processor, model.config)
    from_paths, from_decoders = collator(list(corpus)), collator(list(decoded))
    for name in ("input_values", "audio_attention_mask", "emotion_labels", "gender_labels"):
        torch.testing.assert_close(from_decoders[name], from_paths[name], atol=0, rtol=0)
    trainer = GEmoClapTrainer(
        model=model,
        args=_args(tmp_path / "out", max_steps=2, learning_rate=1e-3, per_device_train_batch_size=2),
        train_dataset=decoded,
        data_collator=collator,
        processing_class=processor,
    )
    before = model.audio_projection.dense_in.weight.detach().clone()
    trainer.train()
    assert trainer.state.global_step == 2
    assert not torch.equal(before, model.audio_projection.dense_in.weight)


# ----- two processes -------------------------------------------------------------------------------------------------


@pytest.mark.slow
@needs_audio_columns
def test_two_process_example_style_trainer_gives_the_pipelines_metrics(tiny_checkpoint, clips, tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2 ... --use_cpu` (gloo) of the example-style flow: the
    evaluation gathered from both processes equals the pipeline on the saved weights."""
    import json

    from transformers import AutoTokenizer

    from tests.helpers.hf_example_check import launch

    output_dir = tmp_path / "out"
    result = launch(tiny_checkpoint, clips[0], output_dir)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    report = json.loads((output_dir / "hf_example_check.json").read_text())
    assert report["world_size"] == 2 and report["global_step"] == 2
    # The script saves what the example saves (model, feature extractor); the prompts' tokenizer is added here.
    AutoTokenizer.from_pretrained(tiny_checkpoint).save_pretrained(output_dir)
    model = AutoModelForAudioClassification.from_pretrained(output_dir).eval()
    extractor = AutoFeatureExtractor.from_pretrained(output_dir)
    arrays = [load_audio(path) for path in clips[0]]
    np.testing.assert_allclose(
        np.array(report["predictions"]), one_clip_at_a_time(model, extractor, arrays), atol=1e-5, rtol=0
    )
    label_names = [model.config.id2label[index] for index in range(model.config.num_labels)]
    pipe = pipeline("audio-classification", model=str(output_dir))
    expected = pipeline_accuracy(pipe, clips[0], clips[1], label_names)
    assert report["eval_accuracy"] == pytest.approx(expected, abs=1e-12)
