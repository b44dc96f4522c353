"""The web app's "Live" and "Speakers" tabs.

- Live: a streaming microphone (`gr.Audio(sources=["microphone"], streaming=True)`); every chunk the browser sends
  (about every half second) is pushed into one `inference.streaming.SegmentStream` per browser session, so the page
  shows the current emotion and a rolling timeline of the last `ROLLING_S` seconds while the person speaks. The
  windows, hop and VAD are the app's; rows are those `predict --segments` would give the same audio.
- Speakers: an audio file with a diarization beside it (RTTM, or CSV/JSONL with start, end, speaker): the timeline
  with one lane per speaker and the per-speaker summary (`inference.turns.speaker_summary`).
"""

from __future__ import annotations

import html
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import GEmoClapError, PredictionError
from ..inference.predictions import Segment
from ..inference.segments import SegmentOptions
from ..inference.timeline_plot import label_colours

# Browsers process microphone audio by default (automatic gain control, noise suppression, echo cancellation): the
# gain control flattens loudness, an emotion cue the model reads, so live labels drifted from those of the same audio
# as a file. Gradio asks for `{audio: true}` and has no option for constraints: the page's head asks for the
# microphone as recorded on every audio request (a page-level script is Gradio's documented way to add behaviour).
MICROPHONE_AS_RECORDED = """<script>
(() => {
  const devices = navigator.mediaDevices;
  if (!devices || !devices.getUserMedia || devices.getUserMedia.gemoClapRaw) return;
  const original = devices.getUserMedia.bind(devices);
  const raw = {echoCancellation: false, noiseSuppression: false, autoGainControl: false};
  const patched = (constraints) => {
    if (constraints && constraints.audio) {
      const audio = constraints.audio === true ? {} : constraints.audio;
      constraints = {...constraints, audio: {...raw, ...audio}};
    }
    return original(constraints);
  };
  patched.gemoClapRaw = true;
  devices.getUserMedia = patched;
})();
</script>"""
ROLLING_S = 30.0  # the live timeline shows this much of the recent past
STREAM_EVERY_S = 0.5
SUMMARY_COLUMNS = ["speaker", "speech (s)", "emotion", "shares", "gender"]


@dataclass
class LiveSession:
    """One browser session's stream and the segments still on its rolling timeline."""

    stream: object
    recent: deque = field(default_factory=deque)


def timeline_html(segments, now: float, labels, current: Segment | None) -> str:
    """The rolling timeline as HTML: one coloured block per segment of the last `ROLLING_S` seconds (the label in
    its text, its times in `data-` attributes), and the current emotion above it."""
    colours = label_colours(labels)
    start = max(0.0, now - ROLLING_S)
    blocks = []
    for segment in segments:
        left = 100 * (max(segment.start, start) - start) / ROLLING_S
        width = 100 * (segment.end - max(segment.start, start)) / ROLLING_S
        blocks.append(
            f'<div class="live-segment" data-emotion="{html.escape(segment.emotion)}" data-start="{segment.start:.2f}" '
            f'data-end="{segment.end:.2f}" title="{segment.start:.1f}-{segment.end:.1f} s {segment.emotion}" '
            f'style="position:absolute;top:{4 + 18 * (segment.index % 3)}px;left:{left:.2f}%;width:{width:.2f}%;'
            f'height:16px;background:{colours[segment.emotion]};font-size:11px;overflow:hidden">'
            f"{html.escape(segment.emotion)}</div>"
        )
    emotion = current.emotion if current is not None else ""
    score = f" {current.probabilities[emotion]:.2f}" if current is not None else ""
    return (
        f'<div id="live-current" data-emotion="{html.escape(emotion)}" style="font-size:1.5em;font-weight:bold">'
        f"{html.escape(emotion or 'listening...')}{score}</div>"
        f'<div style="position:relative;height:60px;border:1px solid #ccc">{"".join(blocks)}</div>'
        f"<div>last {ROLLING_S:g} s, up to {now:.1f} s</div>"
    )


def live_step(analyser, chunk, session: LiveSession | None):
    """One streamed microphone chunk: push it, return (current emotion scores, timeline HTML, session)."""
    from ..inference.streaming import SegmentStream

    if session is None:
        options = SegmentOptions(analyser.window, analyser.hop, analyser.vad)
        session = LiveSession(SegmentStream(analyser.scorer, analyser.feature_extractor, options, name="microphone"))
    if chunk is None:
        return None, timeline_html([], 0.0, analyser.labels, None), session
    rate, samples = chunk
    try:
        found = session.stream.push(np.asarray(samples), sampling_rate=int(rate))
    except GEmoClapError as error:
        raise PredictionError(f"the microphone audio cannot be classified: {error}") from error
    session.recent.extend(found)
    now = session.stream.duration
    while session.recent and session.recent[0].end < now - ROLLING_S:
        session.recent.popleft()
    current = session.recent[-1] if session.recent else None
    scores = dict(current.probabilities) if current is not None else None
    return scores, timeline_html(list(session.recent), now, analyser.labels, current), session


def add_live_tab(gr, analyser) -> None:
    """The "Live" tab: a streaming microphone, the current emotion and the rolling timeline."""
    with gr.Tab("Live"):
        gr.Markdown(
            f"Press record and speak: every {analyser.window:g} s window (every {analyser.hop:g} s"
            + (", speech only" if analyser.vad else "")
            + ") is scored as soon as it is complete."
        )
        microphone = gr.Audio(
            sources=["microphone"], streaming=True, type="numpy", label="microphone", elem_id="live-microphone"
        )
        current = gr.Label(num_top_classes=len(analyser.labels), label="current emotion")
        timeline = gr.HTML(timeline_html([], 0.0, analyser.labels, None), elem_id="live-timeline")
        session = gr.State(None)

        def step(chunk, state):
            try:
                return live_step(analyser, chunk, state)
            except PredictionError as error:
                raise gr.Error(str(error)) from error

        microphone.stream(
            step,
            inputs=[microphone, session],
            outputs=[current, timeline, session],
            stream_every=STREAM_EVERY_S,
            time_limit=None,
            concurrency_limit=None,
            api_name="live",
        )
        microphone.start_recording(lambda: None, outputs=session)  # a new recording starts a new stream


def analyse_speakers(analyser, path: str | None, turns: str | None, pictures: Path):
    """(timeline PNG, summary rows, segment rows with speakers) of an audio file and its diarization."""
    from ..inference.engine import predict_segments
    from ..inference.timeline_plot import save_timeline_png
    from ..inference.turns import speaker_summary

    if not path or not turns:
        raise PredictionError(
            "upload the audio and its speaker turns (an RTTM, or a CSV/JSONL with start, end, speaker)."
        )
    options = SegmentOptions(analyser.window, analyser.hop, analyser.vad)
    result = predict_segments(analyser.scorer, analyser.feature_extractor, [path], options, turns=turns)
    if result.failures:
        raise PredictionError(result.failures[0].reason)
    [found] = result
    picture = pictures / f"speakers_{abs(hash((path, turns)))}.png"
    save_timeline_png(found, picture, labels=analyser.labels, title=Path(path).name)
    summary = [
        [
            s.speaker,
            round(s.speech_s, 1),
            s.emotion,
            ", ".join(f"{label} {100 * share:.0f} %" for label, share in s.shares.items()),
            s.gender or "",
        ]
        for s in speaker_summary(found.segments)
    ]
    rows = [
        [s.speaker, round(s.start, 2), round(s.end, 2), s.emotion, round(s.probabilities[s.emotion], 3)]
        for s in found.segments
    ]
    return str(picture), summary, rows


def add_speaker_tab(gr, analyser, pictures: Path) -> None:
    """The "Speakers" tab: audio plus an RTTM (or CSV/JSONL) -> timeline with one lane per speaker and a summary."""
    with gr.Tab("Speakers"):
        gr.Markdown("Who felt what, when: upload a recording and its diarization (an RTTM file, as pyannote writes).")
        with gr.Row():
            audio = gr.Audio(sources=["upload"], type="filepath", format=None, label="audio")
            turns = gr.File(
                label="speaker turns (.rttm, .csv, .jsonl)", file_types=[".rttm", ".csv", ".jsonl"], type="filepath"
            )
        button = gr.Button("Classify by speaker", variant="primary")
        picture = gr.Image(type="filepath", label="emotion over time, per speaker", interactive=False)
        summary = gr.Dataframe(headers=SUMMARY_COLUMNS, label="per speaker", interactive=False)
        table = gr.Dataframe(
            headers=["speaker", "start (s)", "end (s)", "emotion", "score"], label="segments", interactive=False
        )

        def classify(path, diarization):
            try:
                return analyse_speakers(analyser, path, diarization, pictures)
            except PredictionError as error:
                raise gr.Error(str(error)) from error

        button.click(classify, inputs=[audio, turns], outputs=[picture, summary, table], api_name="predict_speakers")


__all__ = ["LiveSession", "add_live_tab", "add_speaker_tab", "analyse_speakers", "live_step", "timeline_html"]
