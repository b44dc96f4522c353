"""A GEmo-CLAP training step issues no host-device sync from the package's own code (issue 10, item 1).

Every sync (`.item()`, `torch.unique`, boolean indexing, ...) stops the CPU from queueing GPU work ahead. The
recorder (`benchmarks.sync_audit.SyncRecorder`, a `TorchDispatchMode`) sees every aten op of forward, loss
and backward, and attributes each sync to the Python line that issued it; a CPU run therefore catches what would
stall a GPU. The towers' own syncs (transformers' mask handling) are allowed here and listed by the benchmark.
"""

from __future__ import annotations

import os

import pytest
import torch

from benchmarks.sync_audit import PACKAGE_DIR, SyncRecorder
from gemo_clap_hf import GEmoClapConfig, GEmoClapDataCollator, GEmoClapModel
from gemo_clap_hf.demo import towers as random_towers
from tests.helpers.tiny_models import random_clip, tiny_audio_config, tiny_processor, tiny_text_config

# The keys a collator batch holds for training (no prompts: the model holds the label-prompt table).
COLLATOR_KEYS = ("input_values", "audio_attention_mask", "clip_index", "emotion_labels", "gender_labels")
# Clips of different lengths, so that the batch is padded as the length-grouped batches of real corpora are.
ROWS = [(0.45, "sad", "male"), (1.1, "angry", "female"), (0.7, "sad", "female"), (0.9, "neutral", "male")]
# Every loss type on a group-norm WavLM (the package's default encoder: GroupNorm statistics over valid samples
# only, computed inside the model) and on a layer-norm one; every other structure-faithful speech preset (and BERT)
# with the ML loss, which encodes both label tables.
GROUP_NORM_WAVLM = dict(feat_extract_norm="group", do_stable_layer_norm=False, conv_bias=False)
LAYER_NORM_WAVLM = dict(feat_extract_norm="layer", do_stable_layer_norm=True)
CASES = [
    (loss, "wavlm", overrides, "roberta")
    for loss in ("emo", "sl", "ml")
    for overrides in (GROUP_NORM_WAVLM, LAYER_NORM_WAVLM)
]
CASES += [("ml", preset, {}, "roberta") for preset in random_towers.SPEECH_PRESETS if not preset.startswith("wavlm")]
CASES += [("sl", "hubert-base-ls960", {}, "bert-base-uncased")]


def _case_id(case) -> str:
    loss, audio, overrides, text = case
    norm = {"group": "-group-norm", "layer": "-layer-norm"}.get(overrides.get("feat_extract_norm"), "")
    return f"{loss}-{audio}{norm}-{text}"


@pytest.fixture(scope="module")
def processors(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sync_tokenizers")
    return {text: tiny_processor(folder / text, text) for text in ("roberta", "bert-base-uncased")}


def _collated_batch(processor, config: GEmoClapConfig) -> dict:
    rows = [
        {"audio": random_clip(seconds, seed=i), "emotion": emotion, "gender": gender, "id": f"clip{i}"}
        for i, (seconds, emotion, gender) in enumerate(ROWS)
    ]
    batch = GEmoClapDataCollator(processor, config)(rows)
    return {key: value for key, value in batch.items() if key in COLLATOR_KEYS}


def _training_step(model: GEmoClapModel, optimizer, batch: dict) -> torch.Tensor:
    """What `GEmoClapTrainer` does per step: forward with loss, backward, fused AdamW, clamp the temperatures.

    The gradients are cleared first rather than last, so that the caller can check them after the step.
    """
    optimizer.zero_grad(set_to_none=False)
    loss = model(**batch, return_loss=True).loss
    loss.backward()
    optimizer.step()
    model.clamp_logit_scales_()
    return loss.detach()


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_training_step_issues_no_sync_from_the_package(processors, case):
    loss_type, audio, overrides, text = case
    processor = processors[text]
    config = GEmoClapConfig(
        audio_config=tiny_audio_config(audio, **overrides).to_dict(),
        text_config=tiny_text_config(text).to_dict(),
        projection_dim=16,
        loss_type=loss_type,
    )
    torch.manual_seed(0)
    model = GEmoClapModel(config)
    model.set_prompts(processor.tokenizer)
    model.train()
    batch = _collated_batch(processor, config)
    assert batch["audio_attention_mask"].sum(-1).unique().numel() == len(ROWS), "the batch must hold padding"
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    _training_step(model, optimizer, batch)  # first step: optimizer state and any one-off set-up, not recorded

    with SyncRecorder() as recorder:
        loss = _training_step(model, optimizer, batch)

    assert torch.isfinite(loss)
    assert not recorder.package_syncs, (
        f"{len(recorder.package_syncs)} host-device sync(s) issued by gemo_clap_hf in one {loss_type} training "
        f"step on {_case_id(case)}:\n{SyncRecorder.format(recorder.package_syncs)}\n"
        f"(outside the package, for information:\n{SyncRecorder.format(recorder.tower_syncs)})"
    )
    # The recorded step really ran the text tower on the label table (a model skipping it would pass trivially).
    text_grads = [p.grad for name, p in model.text_model.named_parameters() if "layer.0." in name]
    assert text_grads and all(g is not None and g.abs().sum() > 0 for g in text_grads)


# ---- the recorder catches what it must, and attributes it to the right line ---------------------------------

FAKE_PACKAGE_SOURCE = """\
import torch

def syncs(x):
    value = x.sum().item()
    distinct = torch.unique(x)
    positive = x[x > 0]
    return value, distinct, positive

def sync_free(x):
    torch._assert_async(x.abs().sum() >= 0)
    return torch.where(x > 0, x, torch.zeros_like(x)), x.masked_fill(x < 0, 0.0), x.index_select(0, x.argsort())

def calls_tower(tower, x):
    return tower(x)

def masked_sum(x):
    return x[x.detach() > 0].sum()
"""

FAKE_TOWER_SOURCE = """\
def tower(x):
    return int(x.argmax())
"""


def _load(source: str, filename: str) -> dict:
    namespace: dict = {}
    exec(compile(source, filename, "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def fake_package():
    """Functions whose code objects claim a file inside gemo_clap_hf (no file is written to the package)."""
    return _load(FAKE_PACKAGE_SOURCE, os.path.join(PACKAGE_DIR, "_sync_audit_fixture.py"))


def test_recorder_catches_item_unique_and_boolean_indexing_from_package_code(fake_package):
    x = torch.tensor([0.5, -1.0, 2.0, 0.5], requires_grad=True)
    with SyncRecorder() as recorder:
        fake_package["syncs"](x)
    package = recorder.package_syncs
    assert [(sync.op, sync.lineno) for sync in package] == [("_local_scalar_dense", 4), ("_unique2", 5), ("index", 6)]
    assert all(sync.where.startswith("gemo_clap_hf/_sync_audit_fixture.py:") for sync in package)
    assert all(sync.function == "syncs" for sync in package)
    assert recorder.tower_syncs == []


def test_recorder_names_backward_syncs_by_node_catches_tolist_but_not_assert_async(fake_package):
    x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    with SyncRecorder() as recorder:
        fake_package["sync_free"](x)
        assert recorder.syncs == [], SyncRecorder.format(recorder.syncs)
        fake_package["masked_sum"](x).backward()  # index (bool) forward; its backward's index_put (bool) sync
        values = x.detach().tolist()
    assert values == [0.5, -1.0, 2.0]
    assert [sync.op for sync in recorder.syncs] == ["index", "index_put", "tolist"]
    forward, backward, tolist = recorder.syncs
    assert forward.from_package and forward.function == "masked_sum" and forward.backward_node is None
    # The built-in backward node's sync belongs to the autograd engine, not to the line that called .backward().
    assert not backward.from_package and backward.filename is None and backward.backward_node
    assert not tolist.from_package and tolist.filename == os.path.abspath(__file__)
    assert "tolist" not in torch.Tensor.__dict__, "Tensor.tolist must be restored after the block"


def test_sync_inside_a_tower_is_listed_with_the_package_line_that_called_it(fake_package, tmp_path):
    tower = _load(FAKE_TOWER_SOURCE, str(tmp_path / "transformers_like_tower.py"))["tower"]
    with SyncRecorder() as recorder:
        fake_package["calls_tower"](tower, torch.tensor([1.0, 3.0, 2.0]))
    assert recorder.package_syncs == []
    (sync,) = recorder.tower_syncs
    assert sync.op == "_local_scalar_dense" and sync.function == "tower" and sync.lineno == 2
    assert sync.via == "gemo_clap_hf/_sync_audit_fixture.py:14"
