"""The web app's limits and messages (issue 26.14-16): uploads over the size or duration limit are refused from the
file's size and header, before decoding; requests are queued at the stated concurrency, shown on the page with the
limits; unreadable or too-short uploads get a message for the person uploading (their file's name, no server path,
no corpus advice) and one log line, never a traceback; the page names the model by its card's title; timeline
pictures are pruned.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gemo_clap_hf.errors import PredictionError
from tests.helpers.tiny_models import random_clip

gradio = pytest.importorskip("gradio", reason="the web app needs the [app] extra (gradio)")
gradio_client = pytest.importorskip("gradio_client", reason="the app tests drive it through gradio_client")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
RATE = 16000
MAX_S, MAX_MB = 5.0, 0.5


@pytest.fixture(scope="module")
def uploads(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("uploads")
    sf.write(folder / "ok.wav", random_clip(1.5, seed=1), RATE)
    sf.write(folder / "long.flac", random_clip(8.0, seed=2), RATE)  # 8 s: over MAX_S, under MAX_MB as FLAC
    sf.write(
        folder / "big.wav", random_clip(4.0, sampling_rate=44100, seed=3), 44100, subtype="FLOAT"
    )  # 0.67 MB: over MAX_MB
    sf.write(folder / "click.wav", random_clip(0.01, seed=4), RATE)
    (folder / "noise.mp3").write_bytes(np.random.default_rng(0).bytes(4000))  # random bytes named .mp3
    sf.write(folder / "empty.wav", np.zeros(0, dtype=np.float32), RATE)  # a valid header, 0 frames
    return {path.name: path for path in folder.iterdir()}


@pytest.fixture(scope="module")
def page(tiny_checkpoint):
    from gemo_clap_hf.web.app import build_app

    built = build_app(str(tiny_checkpoint), max_file_mb=MAX_MB, max_duration_s=MAX_S, concurrency=2, vad=False)
    _, url, _ = built.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, **built.launch_options)
    yield built, url
    built.close()


def test_limits_and_concurrency_are_set_and_shown(page, tiny_checkpoint):
    built, _ = page
    text = " ".join(block.value for block in built.blocks.values() if isinstance(block, gradio.Markdown))
    assert f"files up to {MAX_MB:g} MB and 5 s of audio, at least 0.25 s" in text
    assert "2 recording(s) analysed at a time" in text
    assert built.launch_options["max_file_size"] == int(MAX_MB * 2**20) and built.max_file_size == MAX_MB * 2**20
    assert built._queue.default_concurrency_limit == 2  # the limit every event without its own one gets
    assert "Model **" + Path(tiny_checkpoint).parent.name + "/" + Path(tiny_checkpoint).name in text  # not "model"


def test_the_app_command_builds_the_page_with_its_flags(tiny_checkpoint, monkeypatch):
    """`gemo-clap app` with every page flag: the page is built with them and launched with the upload limit."""
    from gemo_clap_hf.cli.main import main

    launched = []
    monkeypatch.setattr(gradio.Blocks, "launch", lambda page, **options: launched.append((page, options)))
    flags = ["--max-file-size", "3", "--max-duration", "7", "--concurrency", "2", "--no-vad"]
    code = main(["app", "--model", str(tiny_checkpoint), "--window", "2", "--hop", "0.5", *flags, "--port", "7861"])
    assert code == 0
    [(page, options)] = launched
    analyser = page.analyser
    assert (analyser.window, analyser.hop, analyser.vad) == (2.0, 0.5, False)
    assert (analyser.max_file_mb, analyser.max_duration_s) == (3.0, 7.0)
    assert page._queue.default_concurrency_limit == 2
    assert options["max_file_size"] == 3 * 2**20 and options["server_port"] == 7861


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("long.flac", "long.flac lasts 8 s; this page takes recordings up to 5 s"),
        ("big.wav", "big.wav is 0.7 MB; this page takes files up to 0.5 MB"),
        ("click.wav", "click.wav: it is 0.010 s long, shorter than the 0.25 s minimum"),
        ("noise.mp3", "noise.mp3 could not be read as audio: it is damaged or not an audio file"),
        ("empty.wav", "empty.wav holds no audio (0 samples)"),
    ],
)
def test_refused_uploads_get_a_message_for_the_uploader_without_decoding(page, uploads, monkeypatch, name, message):
    built, _ = page
    import gemo_clap_hf.web.app as web_app

    decoded = []
    monkeypatch.setattr(web_app, "iter_predictions", lambda *a, **k: decoded.append(a) or iter(()))
    with pytest.raises(PredictionError) as caught:
        built.analyser.analyse(str(uploads[name]))
    text = str(caught.value)
    assert message in text, text
    assert str(uploads[name].parent) not in text and "skip_bad_files" not in text and "pipe" not in text
    assert decoded == []  # refused from the size and the header: nothing was decoded


def test_a_bad_upload_through_the_server_logs_one_line_and_no_traceback(page, uploads, caplog, capfd):
    _, url = page
    client = gradio_client.Client(url, verbose=False)
    with (
        caplog.at_level(logging.WARNING, logger="gemo_clap_hf.web.app"),
        pytest.raises(Exception, match="could not be read as audio") as caught,
    ):
        client.predict(gradio_client.handle_file(str(uploads["noise.mp3"])), api_name="/predict")
    assert "/tmp" not in str(caught.value) and str(uploads["noise.mp3"].parent) not in str(caught.value)
    [record] = [r for r in caplog.records if "refused" in r.getMessage()]
    assert record.getMessage().startswith("gemo-clap app: refused noise.mp3: noise.mp3 could not be read")
    assert record.exc_info is None and "Traceback" not in capfd.readouterr().err
    # Over the size limit, Gradio's upload route itself refuses the file.
    with pytest.raises(Exception):  # noqa: B017, PT011 - gradio_client's error type varies by version
        client.predict(gradio_client.handle_file(str(uploads["big.wav"])), api_name="/predict")
    emotions, *_ = client.predict(gradio_client.handle_file(str(uploads["ok.wav"])), api_name="/predict")
    assert emotions["label"] in built_labels(page)


def built_labels(page) -> list[str]:
    return page[0].analyser.labels


def test_the_page_names_the_model_by_its_card_title(tiny_checkpoint, tmp_path):
    import shutil

    from gemo_clap_hf.web.app import model_display_name

    model = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, model)
    assert model_display_name(str(model)) == f"{tmp_path.name}/model"
    (model / "README.md").write_text("---\nmodel-index:\n- name: SL-GEmo-CLAP on IEMOCAP\n  results: []\n---\n# x\n")
    assert model_display_name(str(model)) == "SL-GEmo-CLAP on IEMOCAP"
    assert model_display_name("org/sl-gemo-clap") == "org/sl-gemo-clap"


def test_timeline_pictures_are_pruned_to_the_newest(tmp_path):
    from gemo_clap_hf.web.app import prune_pictures

    for number in range(1, 8):
        (tmp_path / f"timeline_{number:08d}.png").write_bytes(b"png")
    prune_pictures(tmp_path, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"timeline_{n:08d}.png" for n in (5, 6, 7)]
