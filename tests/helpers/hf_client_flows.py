"""The calls that Hugging Face users already make, written for GEmo-CLAP checkpoints: shared by
`tests/training/test_hf_clients.py` and the 2-process script `tests/helpers/hf_example_check.py`.

- transformers' audio-classification example: a `datasets` Audio column, a lazy transform that calls
  `feature_extractor(wavs, sampling_rate=...)` with no padding argument and keeps `model_input_names[0]`, then
  `Trainer(processing_class=feature_extractor)`, whose default collator is `DataCollatorWithPadding`;
- the audio-classification task guide: `dataset.map(preprocess, batched=True)` with `max_length` and `truncation`.

These are the clients' calls in this project's words (the example script itself is not copied here).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from tests.helpers.tiny_models import random_clip

RATE = 16000
# Lengths in seconds: different enough that a batch holds real padding; some above the task guide's 1 s cut.
CLIP_SECONDS = (0.45, 1.3, 0.8, 1.7, 0.6, 1.1, 0.5, 1.5)


def can_decode_audio_columns() -> bool:
    """`datasets` decodes Audio columns with torchcodec, which needs FFmpeg's libraries (the test extra and .ci/run
    install both)."""
    if importlib.util.find_spec("torchcodec") is None or shutil.which("ffmpeg") is None:
        return False
    try:
        from torchcodec.decoders import AudioDecoder  # noqa: F401  (loads the FFmpeg libraries)
    except (ImportError, OSError, RuntimeError):
        return False
    return True


def write_clips(folder: Path, num_emotions: int = 4) -> tuple[list[str], list[int]]:
    """16 kHz PCM_16 WAV files of `CLIP_SECONDS` lengths and labels cycling over the emotions."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, seconds in enumerate(CLIP_SECONDS):
        path = folder / f"clip_{index}.wav"
        sf.write(path, random_clip(seconds, seed=index), RATE, subtype="PCM_16")
        paths.append(str(path))
    return paths, [index % num_emotions for index in range(len(paths))]


def audio_dataset(paths: list[str], labels: list[int], label_names: list[str]):
    """A `datasets.Dataset` as users build one: `file` (paths), `audio` (an Audio column at 16 kHz), `label`."""
    from datasets import Audio, ClassLabel, Dataset, Features, Value

    features = Features({"file": Value("string"), "audio": Value("string"), "label": ClassLabel(names=label_names)})
    dataset = Dataset.from_dict({"file": paths, "audio": paths, "label": labels}, features=features)
    return dataset.cast_column("audio", Audio(sampling_rate=RATE))


def example_transform(feature_extractor):
    """The example script's preprocessing: decoded arrays through the feature extractor (no padding argument),
    keeping only the model's main input and the labels; applied lazily with `set_transform`."""
    main_input = feature_extractor.model_input_names[0]

    def transform(batch):
        arrays = [audio["array"] for audio in batch["audio"]]
        features = feature_extractor(arrays, sampling_rate=feature_extractor.sampling_rate)
        return {main_input: features.get(main_input), "labels": list(batch["label"])}

    return transform


def task_guide_preprocess(feature_extractor, max_length: int = RATE):
    """The task guide's `preprocess` for `dataset.map(..., batched=True)`: arrays cut to `max_length` samples."""

    def preprocess(batch):
        arrays = [audio["array"] for audio in batch["audio"]]
        return feature_extractor(
            arrays, sampling_rate=feature_extractor.sampling_rate, max_length=max_length, truncation=True
        )

    return preprocess


def accuracy(eval_prediction) -> dict:
    """The example's metric, computed with numpy: the share of argmax predictions equal to the labels."""
    predictions = np.argmax(eval_prediction.predictions, axis=-1)
    return {"accuracy": float(np.mean(predictions == eval_prediction.label_ids))}


def train_as_the_example(model, feature_extractor, data, training_args):
    """The example's Trainer flow on `data` (training and evaluation set alike): `Trainer(processing_class=
    feature_extractor)`, train, evaluate, predict. Returns (trainer, eval metrics, prediction logits)."""
    from transformers import Trainer

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=data,
        eval_dataset=data,
        processing_class=feature_extractor,
        compute_metrics=accuracy,
    )
    trainer.train()
    metrics = trainer.evaluate()
    return trainer, metrics, trainer.predict(data).predictions


def one_clip_at_a_time(model, feature_extractor, arrays: list[np.ndarray]) -> np.ndarray:
    """The classifier's logits for each clip scored alone (no padding at all): the reference every flow must meet."""
    rows = []
    with torch.no_grad():
        for array in arrays:
            inputs = feature_extractor(array, sampling_rate=feature_extractor.sampling_rate, return_tensors="pt")
            rows.append(model(**inputs).logits[0].numpy())
    return np.stack(rows)


def pipeline_accuracy(pipe, inputs: list, labels: list[int], label_names: list[str]) -> float:
    """Accuracy of the audio-classification pipeline's top label, over paths or decoded clips."""
    top = [results[0]["label"] for results in pipe(inputs, top_k=1)]
    return float(np.mean([label_names.index(label) == truth for label, truth in zip(top, labels)]))
