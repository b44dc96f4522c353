"""A saved folder works with `trust_remote_code=True` in a Python process where `gemo_clap_hf` cannot be imported."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from gemo_clap_hf import GEmoClapModel, GEmoClapProcessor
from tests.helpers.tiny_models import random_clip

BLOCK_PACKAGE = textwrap.dedent(
    """
    import json, sys
    import numpy as np

    class BlockPackage:  # make sure nothing can import the installed package
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "gemo_clap_hf":
                raise ImportError("gemo_clap_hf is blocked in this test")
    sys.meta_path.insert(0, BlockPackage())
    """
)

FRESH_PROCESS = BLOCK_PACKAGE + textwrap.dedent(
    """
    import torch
    from transformers import AutoModel, AutoModelForAudioClassification, AutoProcessor, pipeline

    folder, clip_path = sys.argv[1], sys.argv[2]
    clip = np.load(clip_path)
    dual = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    classifier = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    inputs = processor(audio=clip, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        embedding = dual.get_audio_features(inputs["input_values"], inputs["audio_attention_mask"]).pooler_output
        logits = classifier(**inputs).logits
    result = pipeline("audio-classification", model=folder, trust_remote_code=True)(clip)
    print("REPORT " + json.dumps({
        "dual_class": type(dual).__name__, "classifier_class": type(classifier).__name__,
        "module": type(dual).__module__, "embedding": embedding[0].tolist(), "logits": logits[0].tolist(),
        "labels": [item["label"] for item in result],
        "package_loaded": any(name.startswith("gemo_clap_hf") for name in sys.modules),
    }))
    """
)


def run_without_the_package(script_text: str, folder, clip, tmp_path) -> dict:
    """Run `script_text` (`sys.argv`: folder, clip.npy) where `gemo_clap_hf` cannot be imported; its REPORT line."""
    import numpy as np

    np.save(tmp_path / "clip.npy", clip)
    script = tmp_path / "fresh.py"
    script.write_text(script_text)
    completed = subprocess.run(
        [sys.executable, str(script), str(folder), str(tmp_path / "clip.npy")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report_line = [line for line in completed.stdout.splitlines() if line.startswith("REPORT ")]
    assert report_line, completed.stdout[-2000:] + completed.stderr[-2000:]
    return json.loads(report_line[-1][len("REPORT ") :])


def test_trust_remote_code_without_the_package(tiny_checkpoint, tmp_path):
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert config["auto_map"]["AutoModel"].endswith("GEmoClapModel")
    assert config["auto_map"]["AutoModelForAudioClassification"].endswith("GEmoClapForAudioClassification")
    for code_file in (
        "configuration_gemo_clap.py",
        "modeling_gemo_clap.py",
        "loss_gemo_clap.py",
        "padding_gemo_clap.py",
        "feature_extraction_gemo_clap.py",
        "processing_gemo_clap.py",
        "prompts_gemo_clap.py",
        "windows_gemo_clap.py",
        "auto_map_gemo_clap.py",
        "errors.py",  # imported by feature_extraction_gemo_clap.py: the audio errors are the package's own
    ):
        assert (tiny_checkpoint / code_file).exists(), code_file

    clip = random_clip(1.1, seed=11)
    report = run_without_the_package(FRESH_PROCESS, tiny_checkpoint, clip, tmp_path)
    assert report["dual_class"] == "GEmoClapModel" and report["classifier_class"] == "GEmoClapForAudioClassification"
    assert report["module"].startswith("transformers_modules") and not report["package_loaded"]
    assert set(report["labels"]) == {"neutral", "happy", "sad", "angry"}

    # The remote-code model computes exactly what the installed package computes.
    model = GEmoClapModel.from_pretrained(tiny_checkpoint).eval()
    inputs = GEmoClapProcessor.from_pretrained(tiny_checkpoint)(audio=clip, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        expected = model.get_audio_features(inputs["input_values"], inputs["audio_attention_mask"]).pooler_output
    torch.testing.assert_close(torch.tensor(report["embedding"]), expected[0], atol=1e-5, rtol=0)


SAVED_ALONE_PROCESS = BLOCK_PACKAGE + textwrap.dedent(
    """
    from transformers import AutoFeatureExtractor, AutoProcessor, pipeline

    folder, clip_path = sys.argv[1], sys.argv[2]
    feature_extractor = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    result = pipeline("audio-classification", model=folder, trust_remote_code=True)(np.load(clip_path), top_k=4)
    print("REPORT " + json.dumps({
        "feature_extractor": type(feature_extractor).__name__, "processor": type(processor).__name__,
        "scores": {item["label"]: item["score"] for item in result},
        "package_loaded": any(name.startswith("gemo_clap_hf") for name in sys.modules),
    }))
    """
)


def test_a_folder_saved_by_save_pretrained_alone_works_without_the_package(tiny_checkpoint, tmp_path):
    """What transformers' audio-classification example writes: the model and the feature extractor (taken from a
    processor's folder) each saved alone, no tokenizer, no processor."""
    from transformers import AutoFeatureExtractor, pipeline

    from gemo_clap_hf import GEmoClapForAudioClassification

    folder = tmp_path / "saved_alone"
    GEmoClapForAudioClassification.from_pretrained(tiny_checkpoint).save_pretrained(folder)
    AutoFeatureExtractor.from_pretrained(tiny_checkpoint).save_pretrained(folder)
    assert not list(folder.glob("tokenizer*"))

    clip = random_clip(0.9, seed=12)
    report = run_without_the_package(SAVED_ALONE_PROCESS, folder, clip, tmp_path)
    assert (folder / "prompts_gemo_clap.py").is_file()
    assert not report["package_loaded"]
    assert (
        report["feature_extractor"] == report["processor"] == "GEmoClapFeatureExtractor"
    )  # no tokenizer: no processor
    expected = {
        item["label"]: item["score"]
        for item in pipeline("audio-classification", model=str(tiny_checkpoint))(clip, top_k=4)
    }
    assert report["scores"].keys() == expected.keys()
    for label, score in expected.items():
        assert report["scores"][label] == pytest.approx(score, abs=1e-6), label
