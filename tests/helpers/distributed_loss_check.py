"""Run under `accelerate launch --num_processes 2 --cpu`: the gathered loss on W processes equals the 1-process loss.

For every tower pair (folders written by `save_random_towers`), loss type and split of a fixed global batch between
the processes (equal (B, B) and unequal (B, B-1)), each process computes `GEmoClapModel`'s loss on its slice (the
loss all-gathers the embeddings; the texts are the model's label-prompt tables), back-propagates, and
all-reduce-averages the parameter gradients as DDP does. The reference is the same model on the whole global batch
in one process, computed *before* the process group exists (so nothing is gathered). Rank 0 writes the differences
to `--output` (JSON); `tests/model/test_distributed_loss.py` and `tests/model/test_presets_matrix.py` assert on them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import torch
import torch.distributed as dist
from accelerate import PartialState

from benchmarks.sync_audit import SyncRecorder
from gemo_clap_hf import GEmoClapModel, loss_gemo_clap

LOSS_TYPES = ("emo", "sl", "ml")
SPLITS = ("equal", "unequal")
NUM_EMOTIONS, NUM_GENDERS = 4, 2
MAX_SAMPLES = 3200  # 0.2 s at 16 kHz: several frames through the tiny towers


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
        "emotion_labels": emotions,
        "gender_labels": genders,
    }


def rank_slice(batch: dict[str, torch.Tensor], sizes: list[int], rank: int) -> dict[str, torch.Tensor]:
    """Rows of the global batch that process `rank` holds when process r holds sizes[r] consecutive rows."""
    start = sum(sizes[:rank])
    return {name: value[start : start + sizes[rank]] for name, value in batch.items()}


def build_model(towers: Path, loss_type: str) -> GEmoClapModel:
    """The same seeded model on every process, from the tower folders (dropout and SpecAugment are off in them)."""
    torch.manual_seed(0)
    model = GEmoClapModel.from_audio_text_pretrained(
        str(towers / "audio"), str(towers / "text"), loss_type=loss_type, projection_dim=16
    )
    assert model.has_prompts, f"{towers / 'text'} holds a tokenizer: the label prompts should be set"
    return model.train()


def loss_and_gradients(
    model: GEmoClapModel, batch: dict[str, torch.Tensor], recorder=None
) -> tuple[float, dict[str, torch.Tensor]]:
    """Forward with loss, backward (inside `recorder`, a SyncRecorder, if given); zeros stand for trainable
    parameters the loss does not reach."""
    model.zero_grad(set_to_none=True)
    with recorder or contextlib.nullcontext():
        loss = model(**batch, return_loss=True).loss
        loss.backward()
    grads = {
        name: (param.grad if param.grad is not None else torch.zeros_like(param)).detach().clone()
        for name, param in model.named_parameters()
        if param.requires_grad
    }
    return loss.item(), grads


def average_across_processes(grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What DDP does to gradients: the mean over processes (same parameter order everywhere)."""
    world_size = dist.get_world_size()
    for grad in grads.values():
        dist.all_reduce(grad)
        grad /= world_size
    return grads


def parameters_agree_across_processes(model: GEmoClapModel) -> bool:
    """Every process built bitwise the same model (else the comparison would mean nothing)."""
    flat = torch.cat([param.detach().flatten() for param in model.parameters()])
    first = flat.clone()
    dist.broadcast(first, src=0)
    return bool(torch.equal(flat, first))


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
        "zero_gradient_parameters": [name for name, grad in ref_grads.items() if not grad.any()],
    }


def _nccl_default_group(real_get_backend):
    """`dist.get_backend` answering "nccl" for the default group (the question the loss asks) and the truth for
    an explicit group (torch's own collectives ask that way and still run on gloo)."""
    return lambda group=None: "nccl" if group is None else real_get_backend(group)


def cases(towers: list[Path], loss_types, splits, per_process: int, world_size: int) -> list[tuple]:
    """(towers, loss type, split name, per-process batch sizes): equal sizes, or the last process one clip short."""
    sizes = {"equal": [per_process] * world_size, "unequal": [per_process] * (world_size - 1) + [per_process - 1]}
    return [(folder, loss, split, sizes[split]) for folder in towers for loss in loss_types for split in splits]


def launch(output: Path, towers: list[Path], num_processes: int = 2, **options) -> subprocess.CompletedProcess:
    """Run this script under `accelerate launch` (torchrun launcher, gloo on CPU) from a test; `options` are this
    script's flags (`loss_types=["ml"]`, `splits=["unequal"]`, ...). Note: `accelerate launch --cpu --num_processes 2`
    starts a single process unless mpirun is configured, hence `--multi_gpu` and `PartialState(cpu=True)`."""
    from tests.helpers.training_helpers import free_port, multi_process_flags

    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *multi_process_flags(num_processes),
        "--main_process_port",
        str(free_port()),
        __file__,
        "--output",
        str(output),
        "--towers",
        *map(str, towers),
    ]
    for name, value in options.items():
        command += [f"--{name}", *map(str, value if isinstance(value, (list, tuple)) else [value])]
    here = str(Path(__file__).parents[2])  # the checkout root: `tests.helpers` and `benchmarks`
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="JSON file that rank 0 writes the results to")
    parser.add_argument(
        "--towers",
        type=Path,
        nargs="+",
        required=True,
        help="folders written by save_random_towers (each holds audio/ and text/)",
    )
    parser.add_argument("--loss_types", nargs="+", default=list(LOSS_TYPES), choices=LOSS_TYPES)
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS)
    parser.add_argument("--per_process_batch", type=int, default=4, help="B: clips per process in the equal split")
    args = parser.parse_args()

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size < 2:
        raise SystemExit("run this under `accelerate launch --num_processes 2 --cpu` (WORLD_SIZE is not set above 1).")
    plan = cases(args.towers, args.loss_types, args.splits, args.per_process_batch, world_size)
    models = {(folder, loss): build_model(folder, loss) for folder in args.towers for loss in args.loss_types}
    batches = {tuple(sizes): global_batch(sum(sizes)) for *_, sizes in plan}
    # References first: before the process group exists the loss's gather is a no-op (one process, 2B clips).
    references = [loss_and_gradients(models[folder, loss], batches[tuple(sizes)]) for folder, loss, _, sizes in plan]

    state = PartialState(cpu=True)  # gloo on CPU even where GPUs exist
    results = []
    for (folder, loss, split, sizes), reference in zip(plan, references):
        model = models[folder, loss]
        agree = parameters_agree_across_processes(model)
        local = rank_slice(batches[tuple(sizes)], sizes, state.process_index)
        recorder = SyncRecorder()
        # Uneven splits also take the path of an NCCL default group: batch sizes go through a gloo side group. (Only
        # the loss's own question, the default group's backend, is answered "nccl": torch's collectives still run
        # on gloo.)
        fake = mock.patch.object(dist, "get_backend", _nccl_default_group(dist.get_backend))
        with fake if split == "unequal" else contextlib.nullcontext():
            loss_value, grads = loss_and_gradients(model, local, recorder)
        distributed = (loss_value, average_across_processes(grads))
        measured = {
            **compare(reference, distributed),
            "parameters_agree": agree,
            "package_syncs": [str(sync) for sync in recorder.package_syncs],
            "host_side_groups": len(loss_gemo_clap._HOST_GROUPS),
        }
        per_rank = [None] * state.num_processes
        dist.all_gather_object(per_rank, measured)
        results.append({"towers": folder.name, "loss_type": loss, "split": split, "sizes": sizes, "per_rank": per_rank})

    if state.is_main_process:
        summary = {"world_size": state.num_processes, "backend": dist.get_backend(), "cases": results}
        args.output.write_text(json.dumps(summary, indent=2))
    state.wait_for_everyone()
    state.destroy_process_group()


if __name__ == "__main__":
    main()
