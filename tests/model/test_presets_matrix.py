"""The core invariants on every stand-in preset pair: towers shaped like the real checkpoints (apps/random_towers.py).

Pairs: every speech preset (wavlm-base-plus, wavlm-large, hubert-base-ls960, wav2vec2-base, data2vec-audio-base)
beside roberta-base, and bert-base-uncased beside hubert-base-ls960. Each pair goes through the path users take: tower
folders saved by `AutoModel` (text towers with their pooler), `GEmoClapModel.from_audio_text_pretrained`, a saved
GEmo-CLAP folder. For each pair:
- a clip's embedding does not depend on what it is batched with (group-norm and data2vec towers included), also
  on weights that look trained (non-zero biases everywhere);
- the save/load round trip: `GEmoClapModel` and `GEmoClapForAudioClassification` reload the same embeddings;
- one training step with transformers' default optimizer (fused AdamW): every trainable parameter gets a gradient
  and moves, and gradient checkpointing gives the same loss and gradients;
- the classifier's argmax equals the dual encoder's, clip by clip and batched, and an independent computation;
- 2 processes × B give the loss and gradients of 1 process × 2B (one launch for all pairs).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoTokenizer, Trainer, TrainingArguments

from gemo_clap_hf import GEmoClapFeatureExtractor, GEmoClapForAudioClassification, GEmoClapModel, GEmoClapProcessor
from gemo_clap_hf.demo.towers import PRESETS
from tests.helpers.tiny_models import PRESET_PAIRS, random_clip, save_tiny_towers

PAIR_IDS = [f"{audio}+{text}" for audio, text in PRESET_PAIRS]
PADDING_TOLERANCE = 1e-4  # max abs difference of unit vectors (float32)
EXTRACTOR = GEmoClapFeatureExtractor()


@pytest.fixture(scope="module")
def towers(tmp_path_factory) -> dict[str, Path]:
    """Tiny tower folders for every pair, as `save_random_towers` writes them (audio/, text/ + tokenizer)."""
    root = tmp_path_factory.mktemp("presets")
    pairs = zip(PAIR_IDS, PRESET_PAIRS)
    return {name: save_tiny_towers(root / name, audio, text)[0].parent for name, (audio, text) in pairs}


def dual_encoder(folder: Path, loss_type: str = "ml", seed: int = 0) -> GEmoClapModel:
    torch.manual_seed(seed)
    return GEmoClapModel.from_audio_text_pretrained(
        str(folder / "audio"), str(folder / "text"), loss_type=loss_type, projection_dim=16
    )


def audio_inputs(clips) -> dict[str, torch.Tensor]:
    features = EXTRACTOR(clips, sampling_rate=16000, padding=True, return_tensors="pt")
    return {"input_values": features["input_values"], "audio_attention_mask": features["audio_attention_mask"]}


def embed(model, clips) -> torch.Tensor:
    with torch.no_grad():
        return model.get_audio_features(**audio_inputs(clips)).pooler_output


@pytest.mark.parametrize("pair", PAIR_IDS)
def test_towers_have_the_checkpoint_structure(towers, pair):
    """The saved folders carry the preset's structural fields, and the text tower holds its pooler (as
    roberta-base and bert-base-uncased do); GEmo-CLAP builds its text tower without it."""
    audio_preset, text_preset = pair.split("+")
    folder = towers[pair]
    for tower, preset in (("audio", audio_preset), ("text", text_preset)):
        saved = json.loads((folder / tower / "config.json").read_text())
        assert saved["model_type"] == PRESETS[preset].model_type
        for key, value in PRESETS[preset].structure.items():
            assert saved[key] == (list(value) if isinstance(value, tuple) else value), (tower, key)
    with safe_open(folder / "text" / "model.safetensors", "pt") as weights:
        names = list(weights.keys())
    assert any(name.startswith("pooler.") for name in names), names
    model = dual_encoder(folder)
    assert not [name for name, _ in model.named_parameters() if ".pooler." in name]


@pytest.mark.parametrize("pair", PAIR_IDS)
def test_a_clip_embedding_does_not_depend_on_its_batch(towers, pair):
    model = dual_encoder(towers[pair]).eval()
    short, long = random_clip(0.4, seed=1), random_clip(1.2, seed=2)  # the long clip is 3x longer
    alone_short, alone_long = embed(model, [short])[0], embed(model, [long])[0]
    for batch, short_row in (([short, long], 0), ([long, short], 1)):
        batched = embed(model, batch)
        short_diff = (batched[short_row] - alone_short).abs().max().item()
        long_diff = (batched[1 - short_row] - alone_long).abs().max().item()
        assert short_diff <= PADDING_TOLERANCE, f"short clip in row {short_row}: {short_diff:.2e}"
        assert long_diff <= PADDING_TOLERANCE, f"long clip in row {1 - short_row}: {long_diff:.2e}"
    # Not vacuous: without the mask, the padded short clip's embedding does change.
    features = audio_inputs([short, long])
    with torch.no_grad():
        unmasked = model.get_audio_features(features["input_values"]).pooler_output[0]
    assert (unmasked - alone_short).abs().max() > 1e-3


def look_trained(model: GEmoClapModel, seed: int = 0) -> GEmoClapModel:
    """Every bias drawn from N(0, 0.5), towers and projection heads alike: a fresh model's zero projection biases
    make any positive factor on the pooled frames (a wrong masked-mean denominator) vanish in the L2 norm."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    return model


@pytest.mark.parametrize("pair", ["wavlm-base-plus+roberta-base", "wavlm-large+roberta-base"])  # group, layer norm
def test_batch_independence_holds_on_weights_that_look_trained(towers, pair):
    model = look_trained(dual_encoder(towers[pair])).eval()
    assert model.audio_projection.dense_in.bias.abs().max() > 0.1
    clips = [random_clip(seconds, seed=30 + i) for i, seconds in enumerate((0.35, 1.3, 0.8))]
    alone = torch.cat([embed(model, [clip]) for clip in clips])
    for order in ([0, 1, 2], [2, 1, 0]):
        batched = embed(model, [clips[i] for i in order])
        torch.testing.assert_close(batched, alone[order], rtol=0, atol=PADDING_TOLERANCE)


def save_gemo_clap(model: GEmoClapModel, folder: Path, towers_folder: Path) -> Path:
    tokenizer = AutoTokenizer.from_pretrained(towers_folder / "text")
    model.save_pretrained(folder)
    GEmoClapProcessor(EXTRACTOR, tokenizer).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("pair", PAIR_IDS)
def test_save_and_load_round_trip(towers, pair, tmp_path):
    model = dual_encoder(towers[pair]).eval()
    folder = save_gemo_clap(model, tmp_path / "model", towers[pair])
    assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.bin"))
    loaded = GEmoClapModel.from_pretrained(folder).eval()
    classifier = GEmoClapForAudioClassification.from_pretrained(folder).eval()
    assert loaded.has_prompts and classifier.has_prompts
    assert loaded.config.audio_config.to_dict() == model.config.audio_config.to_dict()
    assert loaded.config.text_config.to_dict() == model.config.text_config.to_dict()
    original = model.state_dict()
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, original[name], rtol=0, atol=0, msg=name)
    clips = [random_clip(0.5, seed=3), random_clip(0.9, seed=4), random_clip(0.3, seed=5)]
    expected = embed(model, clips)
    torch.testing.assert_close(embed(loaded, clips), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(embed(classifier.gemo_clap, clips), expected, rtol=0, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(
            classifier.label_embeddings("gender"), model.label_embeddings("gender"), rtol=0, atol=1e-6
        )


def training_batch() -> dict[str, torch.Tensor]:
    """Six clips of different lengths, every emotion and both genders."""
    clips = [random_clip(seconds, seed=10 + i) for i, seconds in enumerate((0.3, 0.5, 0.8, 0.4, 0.6, 0.35))]
    return {
        **audio_inputs(clips),
        "emotion_labels": torch.tensor([0, 1, 2, 3, 1, 2]),
        "gender_labels": torch.tensor([0, 1, 1, 0, 0, 1]),
    }


def loss_and_gradients(model: GEmoClapModel, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor | None]]:
    model.zero_grad(set_to_none=True)
    loss = model(**batch).loss
    loss.backward()
    return loss.detach(), {name: param.grad for name, param in model.named_parameters() if param.requires_grad}


@pytest.mark.parametrize("pair", PAIR_IDS)
def test_one_training_step_with_the_default_optimizer(towers, pair, tmp_path):
    model = dual_encoder(towers[pair], loss_type="ml").train()
    checkpointed = copy.deepcopy(model)
    batch = training_batch()
    loss, grads = loss_and_gradients(model, batch)
    assert torch.isfinite(loss)
    missing = [name for name, grad in grads.items() if grad is None or not grad.abs().sum() > 0]
    assert not missing, f"trainable parameters without gradient: {missing}"
    assert all(torch.isfinite(grad).all() for grad in grads.values())

    # Gradient checkpointing recomputes the towers during backward: same loss, same gradients.
    # `activation_checkpointing_enable` is the name from transformers 5.24 (the former one warns there).
    getattr(checkpointed, "activation_checkpointing_enable", checkpointed.gradient_checkpointing_enable)()
    calls = {"first conv": 0, "first encoder layer": 0}  # modules inside checkpointed layers run twice
    inner = {
        "first conv": checkpointed.audio_model.feature_extractor.conv_layers[0].conv,
        "first encoder layer": checkpointed.audio_model.encoder.layers[0].feed_forward,
    }
    for name, module in inner.items():
        # A pre-hook: the recomputation stops as soon as it has what backward needs (non-reentrant checkpointing).
        module.register_forward_pre_hook(lambda *args, name=name: calls.__setitem__(name, calls[name] + 1))
    checkpointed_loss, checkpointed_grads = loss_and_gradients(checkpointed, batch)
    assert calls == {"first conv": 2, "first encoder layer": 2}, f"not recomputed in backward: {calls}"
    torch.testing.assert_close(checkpointed_loss, loss, rtol=0, atol=1e-6)
    for name, grad in grads.items():
        torch.testing.assert_close(checkpointed_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)

    # transformers' default optimizer, as the Trainer builds it (fused AdamW where torch has it).
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    assert "fused" in args.optim and optimizer_kwargs.get("fused") is True, (args.optim, optimizer_kwargs)
    optimizer = optimizer_cls([param for param in model.parameters() if param.requires_grad], **optimizer_kwargs)
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    optimizer.step()
    model.clamp_logit_scales_()
    trainable = [(name, param) for name, param in model.named_parameters() if param.requires_grad]
    unchanged = [name for name, param in trainable if torch.equal(param, before[name])]
    assert not unchanged, f"parameters the step left unchanged: {unchanged}"
    assert model.logit_scale_audio.item() <= math.log(100) + 1e-6


@pytest.mark.parametrize("pair", PAIR_IDS)
def test_classifier_argmax_equals_the_dual_encoder_argmax(towers, pair, tmp_path):
    folder = save_gemo_clap(dual_encoder(towers[pair]), tmp_path / "model", towers[pair])
    model = GEmoClapModel.from_pretrained(folder).eval()
    classifier = GEmoClapForAudioClassification.from_pretrained(folder).eval()
    clips = [random_clip(seconds, seed=20 + i) for i, seconds in enumerate((0.3, 1.1, 0.6, 0.45, 0.8))]
    inputs = audio_inputs(clips)
    num_emotions = len(model.config.emotion_labels)
    with torch.no_grad():
        batched = classifier(input_values=inputs["input_values"], attention_mask=inputs["audio_attention_mask"]).logits
        one_by_one = torch.cat(
            [classifier(**{"input_values": audio_inputs([clip])["input_values"]}).logits for clip in clips]
        )
        dual = model(**inputs).logits_per_audio
        # Independently: audio embeddings against the prompts tokenised here and encoded as any text.
        prompts = AutoTokenizer.from_pretrained(folder)(
            model.config.prompts(model.config.emotion_labels), padding=True, return_tensors="pt"
        )
        texts = model.get_text_features(prompts["input_ids"], prompts["attention_mask"]).pooler_output
        audio = model.get_audio_features(**inputs).pooler_output
        independent = model.logit_scale_audio.exp() * audio @ texts.t()
    assert batched.shape == dual.shape == (len(clips), num_emotions)
    torch.testing.assert_close(batched, dual, rtol=0, atol=1e-5)
    # Clip by clip (as the pipelines run): equal up to the padding tolerance times the logit scale.
    torch.testing.assert_close(one_by_one, dual, rtol=0, atol=2 * PADDING_TOLERANCE * 100)
    torch.testing.assert_close(independent, dual, rtol=0, atol=1e-4)
    for logits in (batched, one_by_one, independent):
        assert logits.argmax(-1).tolist() == dual.argmax(-1).tolist()


@pytest.fixture(scope="module")
def distributed_results(towers, tmp_path_factory) -> dict:
    """One 2-process launch (gloo on CPU) that loops over every pair: ML loss, unequal per-process batches."""
    pytest.importorskip("accelerate")
    from tests.helpers.distributed_loss_check import launch

    output = tmp_path_factory.mktemp("distributed") / "results.json"
    done = launch(output, [towers[pair] for pair in PAIR_IDS], 2, loss_types=["ml"], splits=["unequal"])
    if done.returncode != 0 or not output.exists():
        log = f"{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
        pytest.fail(f"the distributed check failed (exit {done.returncode}):\n{log}")
    return json.loads(output.read_text())


@pytest.mark.slow  # a 2-process launch
@pytest.mark.parametrize("pair", PAIR_IDS)
def test_two_processes_give_the_global_batch_loss(distributed_results, pair):
    assert distributed_results["world_size"] == 2 and distributed_results["backend"] == "gloo"
    found = [case for case in distributed_results["cases"] if case["towers"] == pair]
    assert len(found) == 1 and found[0]["sizes"] == [4, 3]
    for rank, measured in enumerate(found[0]["per_rank"]):
        where = f"{pair} rank {rank}"
        assert measured["parameters_agree"], where
        assert measured["loss_abs_diff"] <= 1e-5, where
        assert measured["max_grad_scaled_diff"] <= 1e-5, (where, measured["worst_parameter"])
        assert measured["max_grad_abs"] > 1e-3 and measured["zero_gradient_parameters"] == [], where


def test_save_random_towers_takes_a_larger_text_vocabulary(tmp_path):
    """The benchmark's RoBERTa keeps its real 50,265-token vocabulary while the prompt tokenizer is small."""
    from gemo_clap_hf.demo.towers import save_random_towers

    _, text = save_random_towers(tmp_path, size="tiny", text_overrides={"vocab_size": 1000})
    assert AutoConfig.from_pretrained(text).vocab_size == 1000


# roberta-base's own splits (GPT-2's byte-level BPE, whose merges RoBERTa uses), first word and after a space.
ROBERTA_BASE_SPLITS = {
    "neutral": ["neutral"],
    "happy": ["happy"],
    "sad": ["s", "ad"],
    "angry": ["ang", "ry"],
    "frustrated": ["fr", "ust", "rated"],
    "fearful": ["f", "ear", "ful"],
    "female": ["female"],
    "emotion": ["em", "otion"],
    "a person speaking in a sad voice": ["a", "Ġperson", "Ġspeaking", "Ġin", "Ġa", "Ġsad", "Ġvoice"],
    "angry neutral": ["ang", "ry", "Ġneutral"],
}


def test_the_stand_in_roberta_tokenizer_splits_prompts_as_roberta_base(tmp_path):
    """The label-prompt table's token counts set the text tower's per-step cost (the benchmark's figures): the
    stand-in tokenizer must give roberta-base's, and still tokenise any text."""
    from gemo_clap_hf.demo.towers import train_prompt_tokenizer

    tokenizer = train_prompt_tokenizer(tmp_path)
    for text, pieces in ROBERTA_BASE_SPLITS.items():
        assert tokenizer.tokenize(text) == pieces, text
    prompts = tokenizer(["neutral", "happy", "angry", "sad"], padding=True, return_tensors="pt")
    assert prompts["attention_mask"].sum(-1).tolist() == [3, 3, 4, 4]  # <s> ... </s>
    unseen = tokenizer("Ünïcode 😀")["input_ids"]
    assert tokenizer.unk_token_id not in unseen and max(unseen) < 400
