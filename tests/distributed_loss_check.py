"""Run under `accelerate launch --num_processes 2 --cpu`: the gathered loss on W processes equals the 1-process loss.

For every loss type and for equal (B, B) and unequal (B, B-1) per-process batches, each process computes
`GEmoClapModel`'s loss on its slice of a fixed global batch (the model all-gathers the embeddings), back-propagates,
and all-reduce-averages the parameter gradients as DDP does. The reference is the same model on the whole global
batch in one process, computed *before* the process group exists (so nothing is gathered). Rank 0 writes the
differences to `--output` (JSON); `tests/test_distributed_loss.py` asserts on them.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
from accelerate import PartialState

from gemo_clap_hf import GEmoClapModel
from tiny_models import tiny_config

LOSS_TYPES = ("emo", "sl", "ml")
NUM_EMOTIONS, NUM_GENDERS = 4, 2
MAX_SAMPLES = 3200  # 0.2 s at 16 kHz: several frames through the tiny WavLM


def global_batch(size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A fixed batch of `size` clips of different lengths, with every emotion and both genders present."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(MAX_SAMPLES // 2, MAX_SAMPLES + 1, (size,), generator=generator)
    audio_mask = (torch.arange(MAX_SAMPLES)[None, :] < lengths[:, None]).long()
    audio = torch.randn(size, MAX_SAMPLES, generator=generator) * audio_mask
    emotions = torch.arange(size) % NUM_EMOTIONS
    emotions = emotions[torch.randperm(size, generator=generator)]
    genders = torch.randint(0, NUM_GENDERS, (size,), generator=generator)
    genders[:NUM_GENDERS] = torch.arange(NUM_GENDERS)
    return {
        "input_values": audio,
        "audio_attention_mask": audio_mask,
        # Token ids stand in for tokenised prompts: <s> label </s>, one distinct prompt per label.
        "input_ids": _prompt_ids(emotions, first_token=5),
        "attention_mask": torch.ones(size, 3, dtype=torch.long),
        "gender_input_ids": _prompt_ids(genders, first_token=20),
        "gender_attention_mask": torch.ones(size, 3, dtype=torch.long),
        "emotion_labels": emotions,
        "gender_labels": genders,
    }


def _prompt_ids(labels: torch.Tensor, first_token: int) -> torch.Tensor:
    bos, eos = torch.zeros_like(labels), torch.full_like(labels, 2)
    return torch.stack([bos, labels + first_token, eos], dim=1)


def rank_slice(batch: dict[str, torch.Tensor], sizes: list[int], rank: int) -> dict[str, torch.Tensor]:
    """Rows of the global batch that process `rank` holds when process r holds sizes[r] consecutive rows."""
    start = sum(sizes[:rank])
    return {name: value[start : start + sizes[rank]] for name, value in batch.items()}


def build_model(loss_type: str) -> GEmoClapModel:
    """The same seeded tiny model on every process (dropout and SpecAugment are off in the tiny configs)."""
    torch.manual_seed(0)
    return GEmoClapModel(tiny_config(loss_type=loss_type)).train()


def loss_and_gradients(model: GEmoClapModel, batch: dict[str, torch.Tensor]) -> tuple[float, dict[str, torch.Tensor]]:
    """Forward with loss, backward; zeros stand for parameters the loss does not reach (e.g. the text pooler)."""
    model.zero_grad(set_to_none=True)
    loss = model(**batch, return_loss=True).loss
    loss.backward()
    grads = {
        name: (param.grad if param.grad is not None else torch.zeros_like(param)).detach().clone()
        for name, param in model.named_parameters()
    }
    return loss.item(), grads


def average_across_processes(grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What DDP does to gradients: the mean over processes (same parameter order everywhere)."""
    world_size = dist.get_world_size()
    for grad in grads.values():
        dist.all_reduce(grad)
        grad /= world_size
    return grads


def compare(reference: tuple[float, dict], distributed: tuple[float, dict]) -> dict:
    """Largest differences of loss and gradients, and the scale of the gradients (so a pass is not vacuous).

    `max_grad_scaled_diff` divides each parameter's largest difference by max(1, its largest reference gradient):
    float32 sums in a different order differ by ~1e-7 of the magnitude, and some gradients here reach ~70.
    """
    (ref_loss, ref_grads), (dist_loss, dist_grads) = reference, distributed
    diffs = {name: (ref_grads[name] - dist_grads[name]).abs().max().item() for name in ref_grads}
    scaled = {name: diffs[name] / max(1.0, ref_grads[name].abs().max().item()) for name in ref_grads}
    worst = max(scaled, key=scaled.get)
    return {
        "reference_loss": ref_loss,
        "distributed_loss": dist_loss,
        "loss_abs_diff": abs(ref_loss - dist_loss),
        "max_grad_abs_diff": max(diffs.values()),
        "max_grad_scaled_diff": scaled[worst],
        "worst_parameter": worst,
        "max_grad_abs": max(grad.abs().max().item() for grad in ref_grads.values()),
        "num_parameters": len(diffs),
        "num_nonzero_gradients": sum(bool(grad.any()) for grad in ref_grads.values()),
    }


def cases(per_process: int, world_size: int) -> list[tuple[str, str, list[int]]]:
    """(loss type, split name, per-process batch sizes): equal sizes, and the last process one clip short."""
    equal = [per_process] * world_size
    unequal = equal[:-1] + [per_process - 1]
    return [(loss, name, sizes) for loss in LOSS_TYPES for name, sizes in (("equal", equal), ("unequal", unequal))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="JSON file that rank 0 writes the results to")
    parser.add_argument("--per_process_batch", type=int, default=4, help="B: clips per process in the equal split")
    args = parser.parse_args()

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size < 2:
        raise SystemExit("run this under `accelerate launch --num_processes 2 --cpu` (WORLD_SIZE is not set above 1).")
    plan = cases(args.per_process_batch, world_size)
    models = {loss: build_model(loss) for loss in LOSS_TYPES}
    batches = {tuple(sizes): global_batch(sum(sizes)) for _, _, sizes in plan}
    # References first: before the process group exists the model's gather is a no-op (one process, 2B clips).
    references = [loss_and_gradients(models[loss], batches[tuple(sizes)]) for loss, _, sizes in plan]

    state = PartialState(cpu=True)  # gloo on CPU even where GPUs exist
    results = []
    for (loss, split, sizes), reference in zip(plan, references):
        local = rank_slice(batches[tuple(sizes)], sizes, state.process_index)
        loss_value, grads = loss_and_gradients(models[loss], local)
        distributed = (loss_value, average_across_processes(grads))
        per_rank = [None] * state.num_processes
        dist.all_gather_object(per_rank, compare(reference, distributed))
        results.append({"loss_type": loss, "split": split, "sizes": sizes, "per_rank": per_rank})

    if state.is_main_process:
        summary = {"world_size": state.num_processes, "backend": dist.get_backend(), "cases": results}
        args.output.write_text(json.dumps(summary, indent=2))
    state.wait_for_everyone()
    state.destroy_process_group()


if __name__ == "__main__":
    main()
