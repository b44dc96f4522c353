"""`gemo-clap app`: a Gradio page to try a model: upload or record audio, see its emotion (and gender) scores, and
for recordings longer than one window the timeline picture and the segment table; a "Live" tab (streaming
microphone: the current emotion and a rolling timeline while the person speaks) and a "Speakers" tab (audio plus
an RTTM: one timeline lane and a summary per speaker), in `web.live`.

Needs the [app] extra (gradio, silero-vad). The audio component hands over the uploaded file's path
(`type="filepath"`, no `format`: Gradio converts nothing, so it needs no ffmpeg) and the package decodes it itself
(soundfile, librosa), exactly as `gemo-clap predict` does; a file it cannot read becomes a `gr.Error` message in the
page, never a traceback. The same `build_app` runs locally and as a Hub Space (`web.space`).

Limits (shown on the page): uploads over `max_file_mb` are refused by Gradio's upload route (`launch_options`) and
again here from the file's size; recordings over `max_duration_s` are refused from their header, before any decoding.
Requests wait in Gradio's queue, `concurrency` at a time (default 1: one analysis uses every core). Error messages
speak to the person uploading: the file's own name, never the server's temp path, and no advice meant for other
interfaces; a refused upload is logged as one line, not a traceback. Timeline pictures are kept for the last
`KEPT_PICTURES` analyses, and Gradio's cache of uploads and outputs is cleared of files older than an hour.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..data.audio import audio_info
from ..errors import GEmoClapAudioError, PredictionError
from ..inference.backends import load_backend
from ..inference.engine import iter_predictions, iter_segmented_files
from ..inference.limits import MIN_CLIP_S, too_short
from ..inference.predictions import Failure
from ..inference.segments import DEFAULT_HOP_S, DEFAULT_WINDOW_S, SegmentOptions
from .limits import DEFAULT_CONCURRENCY, DEFAULT_MAX_DURATION_S, DEFAULT_MAX_FILE_MB, check_limits
from .live import MICROPHONE_AS_RECORDED

logger = logging.getLogger(__name__)

TITLE = "GEmo-CLAP speech emotion recognition"
TABLE_COLUMNS = ["start (s)", "end (s)", "emotion", "score"]
KEPT_PICTURES = 32
CACHE_CLEANUP = (600, 3600)  # Gradio's delete_cache: every 10 minutes, remove cached files older than an hour
FORMATS = "WAV, FLAC, OGG or MP3"


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


def model_display_name(model: str) -> str:
    """How the page names a model: a Hub id as it is; a local folder by its model card's title (the model-index
    name that training writes), else by its folder with the parent's name (".../demo/model" -> "demo/model")."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return model
    card = folder / "README.md"
    if card.is_file():
        from huggingface_hub import ModelCard

        try:
            name = ModelCard.load(card).data.model_name
        except Exception:  # noqa: BLE001 - a card that does not parse just has no title
            name = None
        if name:
            return str(name)
    resolved = folder.resolve()
    return f"{resolved.parent.name}/{resolved.name}" if resolved.parent.name else resolved.name


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.3g} min" if seconds >= 120 else f"{seconds:.3g} s"


def _upload_problem(path: str, reason: str) -> str:
    """A failure's reason as the page shows it: named by the upload's own name, not the server's temp path, and
    with advice for someone uploading a file."""
    name = Path(path).name
    if "holds no samples" in reason or "is empty" in reason:
        return f"{name} holds no audio (0 samples); record or upload it again."
    if "cannot be read" in reason or "does not exist" in reason:
        return f"{name} could not be read as audio: it is damaged or not an audio file. Upload {FORMATS} audio."
    return reason.replace(repr(path), name).replace(path, name)


class EmotionAnalyser:
    """The model, loaded once, and the page's one operation: analyse an audio file within the page's limits."""

    def __init__(
        self,
        model: str,
        device: str | None = None,
        window: float = DEFAULT_WINDOW_S,
        hop: float = DEFAULT_HOP_S,
        vad: bool | None = None,
        max_file_mb: float = DEFAULT_MAX_FILE_MB,
        max_duration_s: float = DEFAULT_MAX_DURATION_S,
    ):
        from ..inference.vad import vad_available

        check_limits(max_file_mb, max_duration_s, DEFAULT_CONCURRENCY)
        self.model_name = model_display_name(model)
        self.max_file_mb, self.max_duration_s = float(max_file_mb), float(max_duration_s)
        self.scorer = load_backend(model, device=device)
        self.feature_extractor = self.scorer.feature_extractor
        self.segment_options = SegmentOptions(window, hop, vad_available() if vad is None else vad)
        self.window, self.hop, self.vad = window, hop, self.segment_options.vad
        self.labels = list(self.scorer.config.emotion_labels)
        self.has_gender = self.scorer.config.loss_type == "ml"
        self._pictures = tempfile.TemporaryDirectory(prefix="gemo-clap-app-")
        self._count = 0  # timeline pictures drawn (their file names count up)

    def check_upload(self, path: str) -> None:
        """Refuse, from its size and header alone (nothing decoded), a file over the page's limits, unreadable,
        or shorter than `MIN_CLIP_S`."""
        name = Path(path).name
        size_mb = os.path.getsize(path) / 2**20
        if size_mb > self.max_file_mb:
            raise PredictionError(
                f"{name} is {size_mb:.1f} MB; this page takes files up to {self.max_file_mb:g} MB. Upload a shorter "
                "or compressed recording (FLAC, OGG, MP3)."
            )
        try:
            info = audio_info(path)
        except (GEmoClapAudioError, OSError) as error:
            raise PredictionError(_upload_problem(path, str(error))) from error
        if info.duration > self.max_duration_s:
            raise PredictionError(
                f"{name} lasts {_duration(info.duration)}; this page takes recordings up to "
                f"{_duration(self.max_duration_s)}. Upload a part of it."
            )
        short = too_short(info.num_samples(self.feature_extractor.sampling_rate), self.feature_extractor.sampling_rate)
        if short:
            raise PredictionError(f"{name}: {short}")

    def analyse(self, path: str | None) -> Analysis:
        """Scores of the whole file and, when it is longer than a window, its segments; `PredictionError` for
        audio over the limits or that cannot be classified (the message names the problem)."""
        if not path:
            raise PredictionError("no audio: upload a file or record with the microphone first.")
        self.check_upload(path)
        [result] = iter_predictions(self.scorer, self.feature_extractor, [path], batch_size=1, num_workers=1)
        if isinstance(result, Failure):
            raise PredictionError(_upload_problem(path, result.reason))
        analysis = Analysis(result.probabilities, result.gender_probabilities, None, [])
        if result.duration > self.window:
            analysis.timeline, analysis.table = self._timeline(path)
        return analysis

    def _timeline(self, path: str) -> tuple[str | None, list[list]]:
        from ..inference.timeline_plot import save_timeline_png

        [found] = iter_segmented_files(self.scorer, self.feature_extractor, [path], self.segment_options, batch_size=8)
        if isinstance(found, Failure):  # e.g. no speech found: the whole-file scores still stand
            return None, []
        self._count += 1
        picture = Path(self._pictures.name) / f"timeline_{self._count:08d}.png"
        save_timeline_png(found, picture, labels=self.labels, title=Path(path).name)
        prune_pictures(Path(self._pictures.name), KEPT_PICTURES)
        table = [
            [round(s.start, 2), round(s.end, 2), s.emotion, round(s.probabilities[s.emotion], 3)]
            for s in found.segments
        ]
        return str(picture), table


def prune_pictures(folder: Path, keep: int) -> None:
    """Remove all but the `keep` newest timeline pictures (their names count up)."""
    for old in sorted(folder.glob("timeline_*.png"))[:-keep]:
        old.unlink(missing_ok=True)


def build_app(model: str, device: str | None = None, concurrency: int = DEFAULT_CONCURRENCY, **options):
    """The Gradio `Blocks` page for `model` (a folder or Hub id); `options` are `EmotionAnalyser`'s (window, hop,
    vad: None uses the VAD when it is installed, max_file_mb, max_duration_s).

    Launch it with `page.launch(**page.launch_options, ...)`, which carries the upload size limit and the script that
    asks browsers for the microphone without their audio processing (`web.live.MICROPHONE_AS_RECORDED`)."""
    gr = _gradio()
    # Every limit checked before the model loads (the analyser checks its own two again).
    check_limits(
        options.get("max_file_mb", DEFAULT_MAX_FILE_MB),
        options.get("max_duration_s", DEFAULT_MAX_DURATION_S),
        concurrency,
    )
    analyser = EmotionAnalyser(model, device, **options)
    window, hop = analyser.window, analyser.hop
    max_file_mb, max_duration_s = analyser.max_file_mb, analyser.max_duration_s

    def classify(path):
        try:
            result = analyser.analyse(path)
        except PredictionError as error:
            logger.warning("gemo-clap app: refused %s: %s", Path(path).name if path else "an empty request", error)
            raise gr.Error(str(error), print_exception=False) from None
        return result.emotions, result.genders, result.timeline, result.table

    with gr.Blocks(title=TITLE, delete_cache=CACHE_CLEANUP) as page:
        gr.Markdown(
            f"# {TITLE}\n"
            f"Model **{analyser.model_name}** recognises: **{', '.join(analyser.labels)}**"
            + (" and the speaker's gender" if analyser.has_gender else "")
            + f". Recordings longer than {window:g} s also get a timeline ({window:g} s windows every {hop:g} s"
            + (", speech only" if analyser.vad else "")
            + ").\n\n"
            + f"Limits: files up to {max_file_mb:g} MB and {_duration(max_duration_s)} of audio, at least "
            f"{MIN_CLIP_S:g} s; {concurrency} recording(s) analysed at a time, the others wait in the queue."
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
    page.queue(default_concurrency_limit=concurrency)
    page.analyser = analyser
    page.launch_options = {"max_file_size": int(max_file_mb * 2**20), "head": MICROPHONE_AS_RECORDED}
    return page


__all__ = [
    "Analysis",
    "EmotionAnalyser",
    "build_app",
    "model_display_name",
    "prune_pictures",
]
