"""The benchmark's end-to-end figure: training throughput of the training script's Trainer set-up, against the same
Trainer running `WavLMForSequenceClassification` on the same corpus, batches and hardware.

GEmo-CLAP goes through `gemo_clap_hf.training` exactly as `train_gemo_clap.py` builds it (`prepare_data`,
`build_processor`, `build_model`, `build_trainer`, with the script's defaults: length-grouped batches, crops at
`max_duration_s`, frozen CNN, frozen text word embeddings, fused AdamW). The baseline is
`AutoModelForAudioClassification` on the same speech-tower folder, with the same arguments, the same sampler and the
same collator (its batches renamed to the classifier's argument names), so the ratio is what GEmo-CLAP adds.
Data loading, collation, the optimizer and the Trainer's own bookkeeping are all inside the timed steps.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path

import torch
from transformers import AutoModelForAudioClassification, Trainer, TrainerCallback

TARGET_MIN = 0.9
ROBERTA_BASE_VOCAB = 50265


class StepTimer(TrainerCallback):
    """Wall time from the end of the `warmup_steps`-th step to the end of the last one (device synchronised at both
    ends only, so the timed steps run as they would untimed), with a GPU-utilisation sampler over that window."""

    def __init__(self, warmup_steps: int, last_step: int, device: torch.device):
        self.warmup_steps, self.last_step, self.device = warmup_steps, last_step, device
        self.start = self.stop = None
        self.sampler = GpuUtilisationSampler(device)

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup_steps:
            self.start = self._now()
            self.sampler.start()
        elif state.global_step == self.last_step:
            self.stop = self._now()
            self.sampler.stop()

    @property
    def seconds(self) -> float:
        return self.stop - self.start


class GpuUtilisationSampler:
    """Samples the GPU's utilisation (%) every `interval` s in a thread, through pynvml or `nvidia-smi`; on a CPU
    run, or where neither is available, `summary()` says so instead."""

    def __init__(self, device: torch.device, interval: float = 0.1):
        self.device, self.interval = device, interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = None
        self._read, self.reason = self._reader()

    def _reader(self):
        if self.device.type != "cuda":
            return None, "not measured: CPU run"
        index = self.device.index if self.device.index is not None else torch.cuda.current_device()
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            return (lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)), None
        except Exception:  # noqa: BLE001 - pynvml missing or unusable: fall back to nvidia-smi
            pass
        if shutil.which("nvidia-smi") is None:
            return None, "not measured: neither pynvml nor nvidia-smi is available"
        command = ["nvidia-smi", f"--id={index}", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
        return (lambda: float(subprocess.run(command, capture_output=True, text=True, timeout=5).stdout.strip())), None

    def start(self) -> None:
        if self._read is None:
            return

        def sample() -> None:
            while not self._stop.is_set():
                with contextlib.suppress(ValueError, OSError, subprocess.SubprocessError):
                    self.samples.append(self._read())
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()

    def summary(self) -> dict:
        if not self.samples:
            return {"measured": False, "reason": self.reason or "no sample was read"}
        ordered = sorted(self.samples)
        return {
            "measured": True,
            "mean_percent": round(sum(ordered) / len(ordered), 1),
            "min_percent": ordered[0],
            "median_percent": ordered[len(ordered) // 2],
            "max_percent": ordered[-1],
            "samples": len(ordered),
            "interval_s": self.interval,
        }


class ClassifierInputs:
    """The GEmo-CLAP collator's batches in `WavLMForSequenceClassification`'s argument names."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, rows):
        batch = self.collator(rows)
        return {
            "input_values": batch["input_values"],
            "attention_mask": batch["audio_attention_mask"],
            "labels": batch["emotion_labels"],
        }


class LengthGroupedTrainer(Trainer):
    """The stock Trainer with GEmoClapTrainer's training sampler, so that both runs see the same batches."""

    def _get_train_sampler(self, train_dataset=None):
        from gemo_clap_hf.training.batching import length_grouped_sampler

        sampler = length_grouped_sampler(train_dataset if train_dataset is not None else self.train_dataset, self.args)
        return sampler if sampler is not None else super()._get_train_sampler(train_dataset)


def _save_towers(folder: Path, size: str, audio_preset: str, seed: int) -> tuple[Path, Path]:
    """Random speech and RoBERTa towers saved as pre-trained folders (`save_random_towers`' layout), at the
    checkpoints' own sizes with RoBERTa's real vocabulary ("tiny": shrunk); the text folder holds a prompt
    tokenizer (its ids all fall inside the vocabulary)."""
    from transformers import AutoModel

    from gemo_clap_hf.demo.towers import speech_tower_config, text_tower_config, train_prompt_tokenizer

    full = size != "tiny"
    torch.manual_seed(seed)
    audio_dir, text_dir = folder / "audio", folder / "text"
    tokenizer = train_prompt_tokenizer(text_dir, "roberta")
    text_config = text_tower_config(
        "roberta-base", "full" if full else "tiny", vocab_size=ROBERTA_BASE_VOCAB if full else len(tokenizer)
    )
    AutoModel.from_config(speech_tower_config(audio_preset, "full" if full else "tiny")).save_pretrained(audio_dir)
    AutoModel.from_config(text_config).save_pretrained(text_dir)
    return audio_dir, text_dir


def _arguments(
    workdir: Path,
    size: str,
    audio_preset: str,
    steps: int,
    batch_size: int,
    device: torch.device,
    bf16: bool,
    workers: int,
    seed: int,
):
    """(model, data, training) arguments as `train_gemo_clap.py` would parse them for the random towers."""
    from gemo_clap_hf.data.synthetic import generate_corpus
    from gemo_clap_hf.training import DataArguments, GEmoClapTrainingArguments, ModelArguments

    # Enough training clips (sessions 1-4: 8 speakers) for every step to see a full, distinct batch.
    per_speaker = max(4, -(-batch_size * (steps + 1) // 8))
    corpus = generate_corpus(workdir / "corpus", seed=seed, utterances_per_speaker=per_speaker, progress=False)
    audio_dir, text_dir = _save_towers(workdir / "towers", size, audio_preset, seed)
    model_args = ModelArguments(audio_encoder=str(audio_dir), text_encoder=str(text_dir), loss_type="sl")
    data_args = DataArguments(dataset="synthetic", data_dir=str(corpus), test_fold="5")
    training_args = GEmoClapTrainingArguments(
        output_dir=str(workdir / "run"),
        overwrite_output_dir=True,
        seed=seed,
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=1e-5,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        report_to=[],
        disable_tqdm=True,
        log_level="error",
        bf16=bf16,
        use_cpu=device.type == "cpu",
        dataloader_num_workers=workers,
        # What the script turns on from --group_by_length (its default).
        train_sampling_strategy="group_by_length" if data_args.group_by_length else "random",
        length_column_name="length",
    )
    return model_args, data_args, training_args


def _timed_train(trainer, timer: StepTimer) -> float:
    trainer.add_callback(timer)
    trainer.train()
    return timer.seconds


def measure_end_to_end(
    size: str,
    audio_preset: str,
    device: torch.device,
    batch_size: int,
    steps: int,
    bf16: bool = False,
    workers: int = 0,
    seed: int = 0,
    repeats: int = 1,
    workdir: Path | None = None,
) -> dict:
    """Training samples/s of GEmo-CLAP (SL) and of the WavLM classifier through the Trainer, over `steps` steps
    after one warm-up step, and their ratio (target >= 0.9).

    The two runs alternate (A B, B A, ...) `repeats` times and the medians are compared, so that load from other
    processes hits both sides alike; both runs see the same batches (same sampler seed, same crops).
    """
    import tempfile

    from gemo_clap_hf.training import prepare_data
    from gemo_clap_hf.training.model_setup import build_processor

    with tempfile.TemporaryDirectory(prefix="gemo_clap_e2e_", dir=workdir) as folder:
        model_args, data_args, training_args = _arguments(
            Path(folder), size, audio_preset, steps + 1, batch_size, device, bf16, workers, seed
        )
        data = prepare_data(data_args, seed=seed)
        processor = build_processor(model_args)
        setup = (model_args, data_args, training_args, data, processor, device, steps)
        seconds, utilisation = {"sl_gemo_clap": [], "wavlm_classifier": []}, {}
        for repeat in range(repeats):
            order = list(seconds) if repeat % 2 == 0 else list(reversed(seconds))
            for name in order:
                elapsed, utilisation[name] = _RUNS[name](*setup)
                seconds[name].append(elapsed)
                _free(device)

    optim = training_args.optim
    throughput = {name: batch_size * steps / statistics.median(values) for name, values in seconds.items()}
    ratio = throughput["sl_gemo_clap"] / throughput["wavlm_classifier"]
    return {
        "ratio": round(ratio, 4),
        "sl_gemo_clap_samples_per_s": round(throughput["sl_gemo_clap"], 3),
        "wavlm_classifier_samples_per_s": round(throughput["wavlm_classifier"], 3),
        "target_min": TARGET_MIN,
        "met": ratio >= TARGET_MIN,
        "gpu_utilisation": utilisation,
        "batch_size": batch_size,
        "timed_steps": steps,
        "warmup_steps": 1,
        "dataloader_num_workers": workers,
        "corpus": f"synthetic (IEMOCAP layout), {len(data.train)} training clips, sessions 1-4",
        "set_up": f"train_gemo_clap.py defaults: length-grouped batches, crop {data_args.max_duration_s:g} s, frozen "
        f"CNN: {model_args.freeze_feature_encoder}, frozen text word embeddings: "
        f"{model_args.freeze_text_embeddings}, optimizer {getattr(optim, 'value', optim)}",
        "repeats": repeats,
    }


def _gemo_clap_run(model_args, data_args, training_args, data, processor, device, steps):
    """The training script's set-up (`build_model`, `build_trainer`), timed; (seconds, GPU utilisation)."""
    from gemo_clap_hf.training.model_setup import build_model
    from gemo_clap_hf.training.run import build_trainer

    model = build_model(model_args, data.labels, processor.tokenizer)
    trainer = build_trainer(model, processor, data, training_args, data_args)
    timer = StepTimer(1, steps + 1, device)
    return _timed_train(trainer, timer), timer.sampler.summary()


def _wavlm_classifier_run(model_args, data_args, training_args, data, processor, device, steps):
    """`AutoModelForAudioClassification` on the same speech-tower folder, same arguments, batches and collator."""
    from gemo_clap_hf.configuration_gemo_clap import GEmoClapConfig
    from gemo_clap_hf.training.batching import GEmoClapDataCollator

    # The collator reads the label sets and the loss type from a GEmo-CLAP config, as in the GEmo-CLAP run.
    config = GEmoClapConfig(emotion_labels=tuple(data.labels), loss_type=model_args.loss_type)
    collator = GEmoClapDataCollator(processor, config, max_duration_s=data_args.max_duration_s, seed=training_args.seed)
    torch.manual_seed(training_args.seed)
    baseline = AutoModelForAudioClassification.from_pretrained(model_args.audio_encoder, num_labels=len(data.labels))
    if model_args.freeze_feature_encoder:
        baseline.freeze_feature_encoder()
    trainer = LengthGroupedTrainer(
        model=baseline,
        args=_baseline_arguments(training_args),
        train_dataset=data.train,
        data_collator=ClassifierInputs(collator),
    )
    timer = StepTimer(1, steps + 1, device)
    return _timed_train(trainer, timer), timer.sampler.summary()


_RUNS = {"sl_gemo_clap": _gemo_clap_run, "wavlm_classifier": _wavlm_classifier_run}


def _baseline_arguments(training_args):
    import copy

    args = copy.copy(training_args)
    args.remove_unused_columns = False  # the collator reads the raw columns (audio path, emotion, gender)
    return args


def _free(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


__all__ = ["GpuUtilisationSampler", "measure_end_to_end"]
