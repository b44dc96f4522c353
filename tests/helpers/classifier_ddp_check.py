"""Run under `accelerate launch` with 2 processes: fine-tune `AutoModelForAudioClassification` with a plain `Trainer`
and gradient checkpointing, as the HF audio-classification guide does, from a saved GEmo-CLAP folder.

Under gradient checkpointing the Trainer wraps the model in DDP with `find_unused_parameters=False`, so a trainable
parameter without gradient stops the run at the second step ("Expected to have finished reduction in the prior
iteration"). Rank 0 writes what the test asserts on to `--output` (JSON): the steps done, whether the towers were
checkpointed and DDP looked for unused parameters, which parameters were frozen and whether they stayed unchanged.
`tests/model/test_conventions.py` launches it with `launch`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

import gemo_clap_hf  # noqa: F401  (registers GEmo-CLAP with the Auto classes)

NUM_CLIPS = 8


def checkpointing_argument() -> str:
    """The `TrainingArguments` field that turns checkpointing on: `activation_checkpointing` from transformers 5.24,
    `gradient_checkpointing` before (still accepted after, as a deprecated alias)."""
    names = {field.name for field in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def clips_dataset(model_dir: str) -> list[dict]:
    """8 clips of different lengths (so padded batches), labels cycling over the 4 emotions."""
    extractor = AutoFeatureExtractor.from_pretrained(model_dir)
    rng = np.random.default_rng(0)
    clips = [0.1 * rng.standard_normal(int(rng.integers(2400, 4800))).astype(np.float32) for _ in range(NUM_CLIPS)]
    features = extractor(clips, sampling_rate=16000, padding=True, return_tensors="pt")
    return [
        {
            "input_values": features["input_values"][row],
            "audio_attention_mask": features["audio_attention_mask"][row],
            "labels": torch.tensor(row % 4),
        }
        for row in range(NUM_CLIPS)
    ]


class RecordSetup(TrainerCallback):
    """What the Trainer set up for training: checkpointing in the towers, and DDP's unused-parameter search."""

    def __init__(self):
        self.seen: dict = {}

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step == 0:
            self.seen["towers_checkpointed"] = [
                any(getattr(module, "gradient_checkpointing", False) for module in tower.modules())
                for tower in (model.gemo_clap.audio_model, model.gemo_clap.text_model)
            ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a saved GEmo-CLAP folder (weights, config, processor)")
    parser.add_argument("--output", type=Path, required=True, help="JSON file that rank 0 writes")
    parser.add_argument("--output_dir", required=True, help="the Trainer's output folder")
    parser.add_argument("--flag", default=None, help="the TrainingArguments checkpointing field (default: newest)")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = AutoModelForAudioClassification.from_pretrained(args.model)
    frozen = sorted(name for name, parameter in model.named_parameters() if not parameter.requires_grad)
    before = {name: model.get_parameter(name).detach().clone() for name in frozen}
    flag = args.flag or checkpointing_argument()
    training_args = TrainingArguments(
        output_dir=args.output_dir,
        per_device_train_batch_size=2,
        max_steps=3,
        learning_rate=1e-3,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=0,
        **{flag: True},
    )
    record = RecordSetup()
    trainer = Trainer(model=model, args=training_args, train_dataset=clips_dataset(args.model), callbacks=[record])
    trainer.train()
    if trainer.is_world_process_zero():
        wrapped = trainer.model_wrapped
        result = {
            "world_size": training_args.world_size,
            "global_step": trainer.state.global_step,
            "find_unused_parameters": getattr(wrapped, "find_unused_parameters", None),
            "frozen": frozen,
            "frozen_unchanged": all(torch.equal(model.get_parameter(n).detach(), before[n]) for n in frozen),
            **record.seen,
        }
        args.output.write_text(json.dumps(result))


def launch(model: Path, output: Path, output_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run this script under `accelerate launch` with 2 CPU processes (torchrun launcher, gloo) from a test."""
    from tests.helpers.training_helpers import free_port, multi_process_flags

    command = [sys.executable, "-m", "accelerate.commands.launch", *multi_process_flags(2)]
    command += ["--main_process_port", str(free_port()), __file__]
    command += ["--model", str(model), "--output", str(output), "--output_dir", str(output_dir), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parents[2]), env.get("PYTHONPATH")]))
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)


if __name__ == "__main__":
    main()
