"""The web app for real: launched on localhost and driven through `gradio_client` (real requests with real audio),
rendered by headless Chromium, and exported as a Space folder that builds the same page.

The reference scores are `predict_files` on the same files (whole file, and `predict_segments` for the timeline).
"""

from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gemo_clap_hf.data.synthetic.recording import synthetic_recording
from gemo_clap_hf.inference.backends import load_classifier
from gemo_clap_hf.inference.engine import predict_files, predict_segments
from gemo_clap_hf.inference.segments import SegmentOptions
from tests.helpers.tiny_models import random_clip

gradio = pytest.importorskip("gradio", reason="the web app needs the [app] extra (gradio)")
gradio_client = pytest.importorskip("gradio_client", reason="the app tests drive it through gradio_client")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
RATE = 16000


@pytest.fixture(scope="module")
def ml_model(ml_checkpoint) -> Path:
    """ML-GEmo-CLAP (emotion and gender) on a wavlm-base-plus-shaped tiny tower."""
    return ml_checkpoint


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("app_audio")
    sf.write(folder / "short.wav", random_clip(1.5, seed=3), RATE)
    recording, _ = synthetic_recording(9.0, turn_s=(4.0, 5.0), utterance_s=(2.0, 3.0))
    sf.write(folder / "long.flac", recording, RATE)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEthis is not audio")
    return {path.stem: path for path in folder.iterdir()}


@pytest.fixture(scope="module")
def served(ml_model):
    """The app on a free localhost port, for the whole module; closed afterwards."""
    from gemo_clap_hf.web.app import build_app

    page = build_app(str(ml_model))
    _, url, _ = page.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    yield page, url
    page.close()


def confidences(label_output: dict) -> dict[str, float]:
    return {item["label"]: item["confidence"] for item in label_output["confidences"]}


def test_app_classifies_uploaded_audio_through_gradio_client(served, ml_model, clips):
    page, url = served
    client = gradio_client.Client(url, verbose=False)
    classifier, feature_extractor = load_classifier(str(ml_model))
    [reference] = predict_files(classifier, feature_extractor, [str(clips["short"])])

    emotions, genders, timeline, table = client.predict(
        gradio_client.handle_file(str(clips["short"])), api_name="/predict"
    )
    assert emotions["label"] == max(reference.probabilities, key=reference.probabilities.get)
    got = confidences(emotions)
    assert set(got) == set(classifier.config.emotion_labels)
    np.testing.assert_allclose(
        [got[k] for k in reference.probabilities], list(reference.probabilities.values()), atol=1e-4
    )
    assert confidences(genders).keys() == set(classifier.config.gender_labels)
    assert timeline is None and not table["data"]  # 1.5 s: shorter than a window, no timeline

    emotions, _, timeline, table = client.predict(gradio_client.handle_file(str(clips["long"])), api_name="/predict")
    [segmented] = predict_segments(classifier, feature_extractor, [str(clips["long"])], SegmentOptions(vad=True))
    assert Path(timeline).is_file() and Path(timeline).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = table["data"]
    assert [row[2] for row in rows] == [s.emotion for s in segmented.segments]
    np.testing.assert_allclose([row[0] for row in rows], [s.start for s in segmented.segments], atol=0.01)

    with pytest.raises(Exception, match="could not be read as audio") as raised:  # gr.Error: a message, not a traceback
        client.predict(gradio_client.handle_file(str(clips["broken"])), api_name="/predict")
    assert "Traceback" not in str(raised.value)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        pytest.skip("Chromium is not installed (CI installs Debian's `chromium` in .ci/run: apt-get install chromium)")
    return found


def _headless(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=20000",
        "--window-size=1280,900",
    ]
    return subprocess.run([chromium, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow  # headless Chromium
def test_app_renders_in_headless_chromium(served, ml_model, tmp_path):
    chromium = _chromium()
    _, url = served
    dom = _headless(chromium, tmp_path / "profile", "--dump-dom", url).stdout
    rendered = re.sub(r"<script.*?</script>", "", dom, flags=re.S)  # Gradio's config sits in a script: not proof
    assert "gradio-container" in rendered
    labels = load_classifier(str(ml_model))[0].config.emotion_labels
    shown = re.search(r"recognises:.*?</p>", rendered, flags=re.S)
    assert shown is not None, "the model's description was not rendered"
    assert all(label in shown.group(0) for label in labels)
    assert "Classify" in rendered

    screenshot = tmp_path / "app.png"
    _headless(chromium, tmp_path / "profile2", f"--screenshot={screenshot}", url)
    from PIL import Image

    pixels = np.asarray(Image.open(screenshot).convert("L"), dtype=np.float32)
    assert pixels.shape == (900, 1280) and pixels.std() > 5  # a drawn page, not a blank one


def test_export_space_writes_a_space_that_builds_the_same_app(ml_model, clips, tmp_path, monkeypatch):
    import yaml

    from gemo_clap_hf.cli.main import main

    space = tmp_path / "space"
    assert main(["app", "--model", str(ml_model), "--export-space", str(space)]) == 0
    readme = (space / "README.md").read_text()
    front = yaml.safe_load(readme.split("---")[1])
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py" and front["sdk_version"] == gradio.__version__
    assert (space / "requirements.txt").read_text().startswith("./gemo_clap_hf-")  # the wheel in the folder
    assert (space / "model" / "config.json").is_file()  # a local model travels with the Space

    monkeypatch.chdir(space)
    page = runpy.run_path(str(space / "app.py"))["demo"]
    assert isinstance(page, gradio.Blocks)
    [reference] = predict_files(*load_classifier(str(ml_model)), [str(clips["short"])])
    scores = page.analyser.analyse(str(clips["short"])).emotions
    np.testing.assert_allclose(list(scores.values()), list(reference.probabilities.values()), atol=1e-4)
