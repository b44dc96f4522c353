"""Run under `accelerate launch` with 2 processes: the audio-classification example's flow on a GEmo-CLAP checkpoint.

Arguments as the example takes them (`HfArgumentParser` over `TrainingArguments`, so `--use_cpu` picks gloo on CPU),
a `datasets` Audio column, the example-style lazy transform (`tests/helpers/hf_client_flows.py`) and
`Trainer(processing_class=feature_extractor)`: train, evaluate, predict, save. Rank 0 writes what the test asserts on
to `<output_dir>/hf_example_check.json`. `tests/training/test_hf_clients.py` launches it with `launch`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from transformers import (
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    HfArgumentParser,
    TrainingArguments,
)

import gemo_clap_hf  # noqa: F401  (registers GEmo-CLAP with the Auto classes)
from tests.helpers.hf_client_flows import audio_dataset, example_transform, train_as_the_example


@dataclasses.dataclass
class ExampleArguments:
    model_name_or_path: str = dataclasses.field(metadata={"help": "a saved GEmo-CLAP folder"})
    audio_files: list[str] = dataclasses.field(metadata={"help": "16 kHz clips; labels cycle over the emotions"})


def main() -> None:
    example, training_args = HfArgumentParser((ExampleArguments, TrainingArguments)).parse_args_into_dataclasses()
    model = AutoModelForAudioClassification.from_pretrained(example.model_name_or_path)
    extractor = AutoFeatureExtractor.from_pretrained(example.model_name_or_path)
    label_names = [model.config.id2label[index] for index in range(model.config.num_labels)]
    labels = [index % len(label_names) for index in range(len(example.audio_files))]
    data = audio_dataset(example.audio_files, labels, label_names).with_transform(example_transform(extractor))
    trainer, metrics, predictions = train_as_the_example(model, extractor, data, training_args)
    trainer.save_model()
    if trainer.is_world_process_zero():
        report = {
            "world_size": training_args.world_size,
            "global_step": trainer.state.global_step,
            "eval_accuracy": metrics["eval_accuracy"],
            "predictions": predictions.tolist(),
        }
        (Path(training_args.output_dir) / "hf_example_check.json").write_text(json.dumps(report))


def launch(model: Path, audio_files: list[str], output_dir: Path) -> subprocess.CompletedProcess:
    """`accelerate launch --multi_gpu --num_processes 2 --num_machines 1 --mixed_precision no THIS ... --use_cpu`."""
    from tests.helpers.training_helpers import free_port, multi_process_flags

    command = [sys.executable, "-m", "accelerate.commands.launch", *multi_process_flags(2)]
    command += ["--main_process_port", str(free_port()), __file__, "--model_name_or_path", str(model)]
    command += ["--audio_files", *audio_files, "--output_dir", str(output_dir), "--use_cpu"]
    command += ["--max_steps", "2", "--per_device_train_batch_size", "2", "--per_device_eval_batch_size", "2"]
    command += ["--learning_rate", "1e-3", "--remove_unused_columns", "False", "--report_to", "none"]
    command += ["--save_strategy", "no", "--seed", "0", "--disable_tqdm", "True"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parents[2]), env.get("PYTHONPATH")]))
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)


if __name__ == "__main__":
    main()
