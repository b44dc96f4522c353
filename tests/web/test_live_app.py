"""The app's Live tab in headless Chromium with a WAV file played as the microphone, and its Speakers tab through
gradio_client.

Chromium is driven over the DevTools protocol (its websocket, with the `websockets` client Gradio already depends on):
open the page, open the Live tab, press record; `--use-file-for-fake-audio-capture` plays a generated conversation
whose turns have known emotions, and the page is read every half second. The model has learned the synthetic corpus
(`learned_export`), so its labels follow the turns' emotions; the reference is `predict_segments` on the same WAV
with the same model: the labels the page shows must change, as the reference's do across the turns, be labels the
reference gives that audio, and agree with the reference's label at each time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gemo_clap_hf.data.synthetic.recording import synthetic_conversation
from gemo_clap_hf.inference.backends import load_classifier
from gemo_clap_hf.inference.engine import predict_segments
from gemo_clap_hf.inference.segments import SegmentOptions
from tests.helpers.tiny_models import save_tiny_checkpoint
from tests.web.test_web_app import _chromium

gradio = pytest.importorskip("gradio", reason="the web app needs the [app] extra (gradio)")
gradio_client = pytest.importorskip("gradio_client", reason="the app tests drive it through gradio_client")
websockets_sync = pytest.importorskip("websockets.sync.client", reason="Chromium is driven through websockets")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
RATE = 16000
LISTEN_S = 40.0


@pytest.fixture(scope="module")
def ml_model(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("live") / "ml", audio_type="wavlm-base-plus", loss_type="ml")


@pytest.fixture(scope="module")
def conversation(tmp_path_factory):
    waveform, turns = synthetic_conversation(8, seed=4, utterances_per_turn=(2, 2))
    folder = tmp_path_factory.mktemp("live_audio")
    path = folder / "conversation.wav"
    sf.write(path, waveform, RATE, subtype="PCM_16")
    rttm = folder / "conversation.rttm"
    rttm.write_text(
        "".join(
            f"SPEAKER conversation 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {t.speaker} <NA> <NA>\n"
            for t in turns
        )
    )
    return path, rttm, turns


@pytest.fixture(scope="module")
def trained_conversation(tmp_path_factory):
    """Eight turns of the held-out session-5 speakers of the corpus that `learned_export`'s model was trained on."""
    waveform, turns = synthetic_conversation(8, seed=0, session=5, utterances_per_turn=(2, 2))
    path = tmp_path_factory.mktemp("trained_audio") / "conversation.wav"
    sf.write(path, waveform, RATE, subtype="PCM_16")
    return path, turns


@pytest.fixture(scope="module")
def trained_page(learned_export):
    """The page on a model that has learned the corpus (held-out UAR about 0.9): its labels follow the emotions."""
    from gemo_clap_hf.web.app import build_app

    page = build_app(str(learned_export["model"]), vad=False)
    _, url, _ = page.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, **page.launch_options)
    yield page, url
    page.close()


@pytest.fixture(scope="module")
def served(ml_model):
    from gemo_clap_hf.web.app import build_app

    page = build_app(str(ml_model), vad=False)
    _, url, _ = page.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    yield page, url
    page.close()


class DevTools:
    """The few DevTools-protocol calls the test needs, over the page target's websocket."""

    def __init__(self, url: str):
        self.socket = websockets_sync.connect(url, max_size=None, open_timeout=30)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {expression}")


def _browser(chromium: str, profile: Path, audio: Path) -> tuple[subprocess.Popen, str]:
    flags = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={audio}",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
    ]
    process = subprocess.Popen([chromium, *flags], stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        found = re.search(r"DevTools listening on (ws://\S+)", line)
        if found:
            port = found.group(1).split(":")[2].split("/")[0]
            return process, port
    raise AssertionError("Chromium did not open its DevTools port")


CLICK = """(() => {{
  const buttons = [...document.querySelectorAll('{scope} button, {scope} [role=tab]')]
    .filter(b => b.offsetParent !== null);
  const found = buttons.find(b => {test});
  if (!found) return false;
  found.click();
  return true;
}})()"""


STOP_SHOWN = "[...document.querySelectorAll('#live-microphone button')].some(b => b.textContent.trim() === 'Stop')"


@pytest.mark.slow
def test_live_tab_follows_a_fake_microphone_in_headless_chromium(
    trained_page, learned_export, trained_conversation, tmp_path
):
    chromium = _chromium()
    _, url = trained_page
    path, turns = trained_conversation
    classifier, feature_extractor = load_classifier(str(learned_export["model"]))
    [reference] = predict_segments(classifier, feature_extractor, [str(path)], SegmentOptions(vad=False))
    truth = {s.emotion for s in reference.segments}
    # The reference follows the file's known turns: a window inside one turn mostly gets that turn's emotion.
    inside = [(s, t) for s in reference.segments for t in turns if t.start <= s.start and s.end <= t.end]
    assert len(inside) >= 10 and np.mean([s.emotion == t.emotion for s, t in inside]) >= 0.8

    process, port = _browser(chromium, tmp_path / "profile", path)
    try:
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30))
        page = DevTools(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        page.call("Page.navigate", url=url)
        page.wait_for(CLICK.format(scope="", test="b.textContent.trim() === 'Live'"))
        page.wait_for("document.querySelectorAll('#live-microphone option').length > 0")  # the devices are listed
        # The page asks for the microphone as recorded: no gain control, noise suppression or echo cancellation.
        settings = page.evaluate(
            "navigator.mediaDevices.getUserMedia({audio: true}).then(s => { const t = s.getAudioTracks()[0];"
            " const g = t.getSettings(); t.stop();"
            " return [g.autoGainControl, g.noiseSuppression, g.echoCancellation]; })"
        )
        assert settings == [False, False, False], settings
        time.sleep(1.0)
        for _ in range(3):  # the first click can land before the recorder is ready: press again until it records
            page.wait_for(CLICK.format(scope="#live-microphone", test="b.textContent.trim() === 'Record'"))
            try:
                page.wait_for(STOP_SHOWN, timeout=10)
                break
            except AssertionError:
                continue
        page.wait_for("document.querySelectorAll('#live-timeline .live-segment').length > 0", timeout=60)
        shown, blocks = [], set()
        deadline = time.monotonic() + LISTEN_S
        while time.monotonic() < deadline:
            state = page.evaluate(
                "(() => { const c = document.querySelector('#live-current');"
                " const s = [...document.querySelectorAll('#live-timeline .live-segment')];"
                " return {current: c ? c.dataset.emotion : '',"
                " blocks: s.map(x => x.dataset.start + ' ' + x.dataset.emotion)}; })()"
            )
            if state["current"] and (not shown or shown[-1] != state["current"]):
                shown.append(state["current"])
            blocks.update(state["blocks"])
            time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert len(blocks) >= 8, f"the rolling timeline got {len(blocks)} segments in {LISTEN_S} s of speech"
    assert len(set(shown)) >= 2, f"the current emotion never changed: {shown}"
    assert set(shown) <= truth
    # The page's windows follow the file's: its label at each time is the reference's label there (the microphone
    # starts the file at an unknown offset, searched for; the audio went through the browser at 48 kHz and back).
    duration = sf.info(str(path)).duration
    starts = np.array([s.start for s in reference.segments])
    page_blocks = [(float(b.split()[0]), b.split()[1]) for b in blocks]
    best = 0.0
    for offset in np.arange(0.0, duration, 0.05):
        nearest = [np.argmin(np.abs(starts - (start + offset) % duration)) for start, _ in page_blocks]
        agree = np.mean([reference.segments[i].emotion == label for i, (_, label) in zip(nearest, page_blocks)])
        best = max(best, float(agree))
    print(f"labels shown {shown}; agreement with the file's labels {best:.2f} over {len(page_blocks)} windows")
    assert best >= 0.8


def test_live_step_is_the_stream_of_the_microphone_chunks(served, ml_model, conversation):
    from gemo_clap_hf.web.live import live_step

    page, _ = served
    path, _, _ = conversation
    classifier, feature_extractor = load_classifier(str(ml_model))
    [reference] = predict_segments(classifier, feature_extractor, [str(path)], SegmentOptions())
    pcm, _ = sf.read(path, dtype="int16")
    high = np.repeat(pcm[: 12 * RATE], 3)  # the browser records at 48 kHz: the step resamples
    session, emotions = None, []
    for start in range(0, len(high), 24000):
        scores, html, session = live_step(page.analyser, (48000, high[start : start + 24000]), session)
        if scores is not None:
            emotions.append(max(scores, key=scores.get))
    assert 'id="live-current"' in html and html.count('class="live-segment"') == len(session.recent) >= 8
    assert session.stream.held <= session.stream.window + 24000 // 3 + 1
    assert set(emotions) <= {s.emotion for s in reference.segments} | set(classifier.config.emotion_labels)


def test_speakers_tab_takes_an_rttm_beside_the_audio(served, ml_model, conversation):
    _, url = served
    path, rttm, turns = conversation
    client = gradio_client.Client(url, verbose=False)
    picture, summary, table = client.predict(
        gradio_client.handle_file(str(path)), gradio_client.handle_file(str(rttm)), api_name="/predict_speakers"
    )
    assert Path(picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [row[0] for row in summary["data"]] == ["A", "B"]
    for speaker, seconds, *_ in summary["data"]:
        assert seconds == pytest.approx(sum(t.end - t.start for t in turns if t.speaker == speaker), abs=0.1)
    for speaker, start, end, *_ in table["data"]:
        assert any(t.speaker == speaker and t.start - 0.01 <= start and end <= t.end + 0.01 for t in turns)
    with pytest.raises(Exception, match="speaker turns"):
        client.predict(gradio_client.handle_file(str(path)), None, api_name="/predict_speakers")
