"""A folder written by `model.save_pretrained` alone (no tokenizer beside it, as transformers' audio-classification
example and the Trainer's checkpoints write it) classifies everywhere; folders saved before the prompts' token ids
were saved still load with the same logits; every `auto_map` entry names a file of its folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import AutoFeatureExtractor, AutoProcessor, pipeline

from gemo_clap_hf import GEmoClapFeatureExtractor, GEmoClapForAudioClassification, GEmoClapModel
from gemo_clap_hf.loss_gemo_clap import GEmoClapLoss, gemo_clap_loss
from tests.helpers.tiny_models import auto_map_references, random_clip, tiny_config, tiny_processor

GEMO_CLAP = Path(sys.executable).parent / "gemo-clap"  # the console script, run as users run it
OLD_FORMAT = json.loads((Path(__file__).parent / "saved_format_0.1.0.json").read_text())
LABELS = ["neutral", "happy", "sad", "angry"]


def write_old_layout(folder: Path, seed: int = 3, **config_kwargs) -> tuple[GEmoClapModel, object]:
    """The pinned recipe of a folder as gemo-clap-hf 0.1.0 wrote it: weights and config without the prompts' token
    ids, the processor (tokenizer included) beside them. Returns the model that wrote it and its processor."""
    torch.manual_seed(seed)
    model = GEmoClapModel(tiny_config(**config_kwargs)).eval()
    processor = tiny_processor(folder.parent / f"{folder.name}_tokenizer")
    model.set_prompts(processor.tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config.pop("label_prompt_tokens", None)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "prompts_gemo_clap.py").unlink(
        missing_ok=True
    )  # the old folders have no such file; the old modeling file needs none
    return model, processor


def independent_logits(model: GEmoClapModel, tokenizer, clip: np.ndarray, texts: list[str]) -> torch.Tensor:
    """s_a · audio·text similarities, the texts tokenised here (no prompt table, no cache), `(1, len(texts))`."""
    inputs = GEmoClapFeatureExtractor()(clip, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        audio = model.get_audio_features(inputs["input_values"], inputs["audio_attention_mask"]).pooler_output
        tokens = tokenizer(texts, padding=True, return_tensors="pt")
        text = model.get_text_features(tokens["input_ids"], tokens["attention_mask"]).pooler_output
        return model.logit_scales[0] * audio @ text.t()


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """An ML model saved by `save_pretrained` alone, beside a feature extractor taken from a processor's folder
    and saved alone (what transformers' example script writes). Returns the folder, the model and its tokenizer."""
    root = tmp_path_factory.mktemp("saved_alone")
    source = root / "with_processor"
    model, processor = write_old_layout(source, seed=5, loss_type="ml")
    folder = root / "model"
    GEmoClapForAudioClassification.from_pretrained(source).save_pretrained(folder)
    AutoFeatureExtractor.from_pretrained(source).save_pretrained(folder)
    return folder, model, processor.tokenizer


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("wav") / "clip.wav"
    sf.write(path, random_clip(1.2, seed=8), 16000, subtype="FLOAT")
    clip, _ = sf.read(path, dtype="float32")
    return path, clip


def test_a_folder_saved_by_save_pretrained_alone_classifies_in_both_pipelines(made, clip_file):
    folder, model, tokenizer = made
    _, clip = clip_file
    assert not list(folder.glob("tokenizer*")) and not list(folder.glob("vocab*"))
    expected = independent_logits(model, tokenizer, clip, LABELS)[0].softmax(-1)

    result = pipeline("audio-classification", model=str(folder))(clip, top_k=4)
    scores = {item["label"]: item["score"] for item in result}
    np.testing.assert_allclose([scores[label] for label in LABELS], expected.numpy(), atol=1e-5, rtol=0)

    zero_shot = pipeline("zero-shot-audio-classification", model=str(folder))
    for labels in (["sad", "neutral", "angry"], ["male", "female"]):  # saved emotion prompts, saved gender prompts
        expected_zero_shot = independent_logits(model, tokenizer, clip, labels)[0].softmax(-1)
        scores = {item["label"]: item["score"] for item in zero_shot(clip, candidate_labels=labels)}
        np.testing.assert_allclose([scores[label] for label in labels], expected_zero_shot, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match=r"no tokenizer.*\['calm'\] are not among them.*pass `tokenizer=`"):
        zero_shot(clip, candidate_labels=["calm"])


def test_a_folder_saved_by_save_pretrained_alone_classifies_in_gemo_clap_predict(made, clip_file):
    folder, model, tokenizer = made
    path, clip = clip_file
    completed = subprocess.run(
        [str(GEMO_CLAP), "predict", "--model", str(folder), str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    [row] = json.loads(completed.stdout)
    expected = independent_logits(model, tokenizer, clip, LABELS)[0].softmax(-1)
    scores = {item["label"]: item["score"] for item in row["emotions"]}
    np.testing.assert_allclose([scores[label] for label in LABELS], expected.numpy(), atol=1e-3, rtol=0)
    genders = independent_logits(model, tokenizer, clip, ["female", "male"])[0]
    assert row["gender"] == ["female", "male"][int(genders.argmax())]  # an ML model: the saved gender prompts


def test_a_folder_saved_before_the_prompt_ids_loads_with_the_same_logits(tmp_path, clip_file):
    _, clip = clip_file
    old = tmp_path / "old"
    model, processor = write_old_layout(old, seed=4, loss_type="ml")
    config = json.loads((old / "config.json").read_text())
    assert sorted(config) == OLD_FORMAT["GEmoClapModel"]["config_keys"]  # the recipe writes the 0.1.0 layout
    inputs = processor(audio=clip, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        audio = model.get_audio_features(inputs["input_values"], inputs["audio_attention_mask"]).pooler_output
        expected = {kind: model.label_logits(audio, kind) for kind in ("emotion", "gender")}

    loaded = GEmoClapForAudioClassification.from_pretrained(old).eval()
    with torch.no_grad():
        output = loaded(**inputs)
    torch.testing.assert_close(output.logits, expected["emotion"], atol=1e-6, rtol=0)
    torch.testing.assert_close(output.gender_logits, expected["gender"], atol=1e-6, rtol=0)

    # Saved again without its tokenizer, it now carries the ids and still gives the same logits.
    resaved = tmp_path / "resaved"
    loaded.save_pretrained(resaved)
    with torch.no_grad():
        again = GEmoClapForAudioClassification.from_pretrained(resaved).eval()(**inputs)
    torch.testing.assert_close(again.logits, expected["emotion"], atol=1e-6, rtol=0)
    torch.testing.assert_close(again.gender_logits, expected["gender"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("cls", [GEmoClapModel, GEmoClapForAudioClassification])
def test_a_new_save_keeps_every_name_of_the_old_format(tmp_path, cls):
    from safetensors import safe_open

    torch.manual_seed(0)
    model = cls(tiny_config())
    model.set_prompts(tiny_processor(tmp_path / "tokenizer").tokenizer)
    model.save_pretrained(tmp_path / "new")
    config = json.loads((tmp_path / "new" / "config.json").read_text())
    with safe_open(str(tmp_path / "new" / "model.safetensors"), "pt") as weights:
        names = set(weights.keys())
    old = OLD_FORMAT[cls.__name__]
    assert names >= set(old["weight_names"]), sorted(set(old["weight_names"]) - names)
    assert set(config) >= set(old["config_keys"]), sorted(set(old["config_keys"]) - set(config))
    assert config["auto_map"].items() >= old["auto_map"].items()
    assert set(config) - set(old["config_keys"]) == {"label_prompt_tokens"}  # the one addition
    assert config["label_prompt_tokens"]["gender"]["texts"] == ["female", "male"]


def test_relabelling_a_folder_without_a_tokenizer_says_what_to_pass(made, clip_file):
    folder, model, tokenizer = made
    _, clip = clip_file
    new = {0: "calm", 1: "angry", 2: "sad"}
    classifier = GEmoClapForAudioClassification.from_pretrained(folder, id2label=new).eval()
    assert not classifier.has_prompts
    message = (
        r"emotion prompts \['calm', 'angry', 'sad'\] differ from the ones saved with the model.*re-labelling needs "
        r"the text tower's tokenizer.*`model.set_prompts\(tokenizer\)`"
    )
    inputs = GEmoClapFeatureExtractor()(clip, sampling_rate=16000, return_tensors="pt")
    with pytest.raises(RuntimeError, match=message):
        classifier(**inputs)
    classifier.set_prompts(tokenizer)
    with torch.no_grad():
        logits = classifier(**inputs).logits
    torch.testing.assert_close(logits, independent_logits(model, tokenizer, clip, list(new.values())))


def test_every_auto_map_entry_names_a_file_of_its_folder(made, tiny_checkpoint, tmp_path):
    folder, _, _ = made
    alone, config_alone = tmp_path / "feature_extractor_alone", tmp_path / "config_alone"
    AutoFeatureExtractor.from_pretrained(tiny_checkpoint).save_pretrained(alone)
    GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).config.save_pretrained(config_alone)
    for checked in (folder, tiny_checkpoint, alone, config_alone):
        references = auto_map_references(checked)
        assert references, checked
        for name, reference in references:
            module = reference.split(".")[0]
            assert (checked / f"{module}.py").is_file(), f"{checked.name}/{name} names {reference}"
    assert type(AutoProcessor.from_pretrained(alone)).__name__ == "GEmoClapFeatureExtractor"
    assert set(json.loads((config_alone / "config.json").read_text())["auto_map"]) == {"AutoConfig"}


def test_the_loss_is_built_once_and_rebuilt_on_request(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = GEmoClapModel(tiny_config(loss_type="sl")).train()
    model.set_prompts(tiny_processor(tmp_path).tokenizer)
    built = []
    original = GEmoClapLoss.__init__
    monkeypatch.setattr(GEmoClapLoss, "__init__", lambda self, *a, **k: built.append(k) or original(self, *a, **k))
    values = torch.stack([torch.tensor(random_clip(0.5, seed=s)) for s in range(4)])
    labels = {"emotion_labels": torch.tensor([0, 1, 0, 3]), "gender_labels": torch.tensor([0, 1, 1, 0])}
    for _ in range(2):
        model(values, **labels)
    assert built == []  # no loss built per forward

    model.config.loss_type, model.config.alpha_e = "emo", 0.5
    with pytest.raises(ValueError, match=r"loss_type 'sl' -> 'emo', alpha_e 0.9 -> 0.5.*model.rebuild_loss\(\)"):
        model(values, **labels)
    model.rebuild_loss()
    assert len(built) == 1
    output = model(values, **labels)
    scale_audio, scale_text = model.logit_scales
    table = model.label_embeddings("emotion")
    expected = gemo_clap_loss(
        output.audio_embeds,
        table[labels["emotion_labels"]],
        labels["emotion_labels"],
        scale_audio,
        scale_text,
        loss_type="emo",
    )
    torch.testing.assert_close(output.loss, expected.loss)


def test_an_edited_prompt_table_in_config_json_is_named_with_the_fix(made, tmp_path):
    import shutil

    folder, _, _ = made
    edited = tmp_path / "edited"
    shutil.copytree(folder, edited)
    config = json.loads((edited / "config.json").read_text())
    config["label_prompt_tokens"]["emotion"]["input_ids"].pop()  # 4 texts, 3 rows of ids
    (edited / "config.json").write_text(json.dumps(config))
    fix = r"config.json's `label_prompt_tokens\['emotion'\]` needs one row .* per text; delete `label_prompt_tokens`"
    with pytest.raises(ValueError, match=fix):
        GEmoClapForAudioClassification.from_pretrained(edited)
