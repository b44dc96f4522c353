"""`gemo-clap app`: a Gradio page to try a model: upload or record audio, see its emotion (and gender) scores, and
for recordings longer than one window the timeline picture and the segment table; a "Live" tab (streaming
microphone: the current emotion and a rolling timeline while the person speaks) and a "Speakers" tab (audio plus
an RTTM: one timeline lane and a summary per speaker), in `web.live`.

Needs the [app] extra (gradio, silero-vad). The audio component hands over the uploaded file's path
(`type="filepath"`, no `format`: Gradio converts nothing, so it needs no ffmpeg) and the package decodes it itself
(soundfile, librosa), exactly as `gemo-clap predict` does; a file it cannot read becomes a `gr.Error` message in the
page, never a traceback. The same `build_app` runs locally and as a Hub Space (`web.space`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import PredictionError
from ..inference.backends import load_backend
from ..inference.engine import iter_predictions, iter_segmented_files
from ..inference.predictions import Failure
from ..inference.segments import DEFAULT_HOP_S, DEFAULT_WINDOW_S, SegmentOptions

TITLE = "GEmo-CLAP speech emotion recognition"
TABLE_COLUMNS = ["start (s)", "end (s)", "emotion", "score"]


def _gradio():
    try:
        import gradio
    except ImportError as error:
        raise PredictionError("the web app needs Gradio: pip install 'gemo-clap-hf[app]'.") from error
    return gradio


@dataclass
class Analysis:
    """What the page shows for one recording."""

    emotions: dict[str, float]
    genders: dict[str, float] | None
    timeline: str | None  # PNG path, for recordings longer than one window
    table: list[list]


class EmotionAnalyser:
    """The model, loaded once, and the page's one operation: analyse an audio file."""

    def __init__(
        self,
        model: str,
        device: str | None = None,
        window: float = DEFAULT_WINDOW_S,
        hop: float = DEFAULT_HOP_S,
        vad: bool | None = None,
    ):
        from ..inference.vad import vad_available

        self.model_name = model
        self.scorer = load_backend(model, device=device)
        self.feature_extractor = self.scorer.feature_extractor
        self.segment_options = SegmentOptions(window, hop, vad_available() if vad is None else vad)
        self.window, self.hop, self.vad = window, hop, self.segment_options.vad
        self.labels = list(self.scorer.config.emotion_labels)
        self.has_gender = self.scorer.config.loss_type == "ml"
        self._pictures = tempfile.TemporaryDirectory(prefix="gemo-clap-app-")

    def analyse(self, path: str | None) -> Analysis:
        """Scores of the whole file and, when it is longer than a window, its segments; `PredictionError` for
        audio that cannot be classified (the message names the problem)."""
        if not path:
            raise PredictionError("no audio: upload a file or record with the microphone first.")
        [result] = iter_predictions(self.scorer, self.feature_extractor, [path], batch_size=1, num_workers=1)
        if isinstance(result, Failure):
            raise PredictionError(result.reason)
        analysis = Analysis(result.probabilities, result.gender_probabilities, None, [])
        if result.duration > self.window:
            analysis.timeline, analysis.table = self._timeline(path)
        return analysis

    def _timeline(self, path: str) -> tuple[str | None, list[list]]:
        from ..inference.timeline_plot import save_timeline_png

        [found] = iter_segmented_files(self.scorer, self.feature_extractor, [path], self.segment_options, batch_size=8)
        if isinstance(found, Failure):  # e.g. no speech found: the whole-file scores still stand
            return None, []
        picture = Path(self._pictures.name) / f"timeline_{abs(hash(path))}.png"
        save_timeline_png(found, picture, labels=self.labels, title=Path(path).name)
        table = [
            [round(s.start, 2), round(s.end, 2), s.emotion, round(s.probabilities[s.emotion], 3)]
            for s in found.segments
        ]
        return str(picture), table


def build_app(
    model: str,
    device: str | None = None,
    window: float = DEFAULT_WINDOW_S,
    hop: float = DEFAULT_HOP_S,
    vad: bool | None = None,
):
    """The Gradio `Blocks` page for `model` (a folder or Hub id); `vad=None` uses the VAD when it is installed."""
    gr = _gradio()
    analyser = EmotionAnalyser(model, device, window, hop, vad)

    def classify(path):
        try:
            result = analyser.analyse(path)
        except PredictionError as error:
            raise gr.Error(str(error)) from error
        return result.emotions, result.genders, result.timeline, result.table

    with gr.Blocks(title=TITLE) as page:
        gr.Markdown(
            f"# {TITLE}\n"
            f"Model **{Path(model).name}** recognises: **{', '.join(analyser.labels)}**"
            + (" and the speaker's gender" if analyser.has_gender else "")
            + f". Recordings longer than {window:g} s also get a timeline ({window:g} s windows every {hop:g} s"
            + (", speech only" if analyser.vad else "")
            + ")."
        )
        with gr.Row():
            audio = gr.Audio(sources=["upload", "microphone"], type="filepath", format=None, label="audio")
            with gr.Column():
                emotions = gr.Label(num_top_classes=len(analyser.labels), label="emotion")
                genders = gr.Label(label="gender", visible=analyser.has_gender)
        button = gr.Button("Classify", variant="primary")
        timeline = gr.Image(type="filepath", label="emotion over time", interactive=False)
        table = gr.Dataframe(headers=TABLE_COLUMNS, label="segments", interactive=False)
        outputs = [emotions, genders, timeline, table]
        button.click(classify, inputs=audio, outputs=outputs, api_name="predict")
        with gr.Tabs():
            from .live import add_live_tab, add_speaker_tab

            add_live_tab(gr, analyser)
            add_speaker_tab(gr, analyser, Path(analyser._pictures.name))
    page.analyser = analyser
    return page


__all__ = ["Analysis", "EmotionAnalyser", "build_app"]
