"""The timeline picture of `predict --segments --plot` and of the web app: emotion over a recording's time.

From the top: speech / non-speech (when a VAD was used), the predicted emotion as a coloured strip (one lane per
speaker with speaker turns), then one band per emotion label with its probability over time. Each window's values
are drawn over the part of time nearest its centre, so overlapping windows tile the timeline without double drawing.
Drawn with matplotlib's object API on the Agg canvas (as `training/reporting/plots.py`): no display and no global
pyplot state.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .predictions import Segment, SegmentedFile

# Colours people read without a legend: neutral grey, happy yellow-orange, sad blue, angry red; others from tab10.
KNOWN_COLOURS = {"neutral": "#8c8c8c", "happy": "#f2a900", "sad": "#3b6fd4", "angry": "#d62728"}
TICK_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
OTHER_COLOURS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#ff7f0e", "#1f77b4")


def label_colours(labels: Sequence[str]) -> dict[str, str]:
    others = iter(OTHER_COLOURS * (1 + len(labels) // len(OTHER_COLOURS)))
    return {label: KNOWN_COLOURS.get(label) or next(others) for label in labels}


def segment_tiles(segments: Sequence[Segment]) -> list[tuple[float, float]]:
    """The stretch of time each segment (in time order) stands for: the part nearest its centre, within its bounds."""
    centres = [(s.start + s.end) / 2 for s in segments]
    tiles = []
    for i, segment in enumerate(segments):
        left = segment.start if i == 0 else max(segment.start, (centres[i - 1] + centres[i]) / 2)
        right = segment.end if i == len(centres) - 1 else min(segment.end, (centres[i] + centres[i + 1]) / 2)
        tiles.append((left, max(left, right)))
    return tiles


def speaker_lanes(segments: Sequence[Segment]) -> dict[str | None, list[Segment]]:
    """The segments of each speaker (in order of first appearance; one lane, None, without speaker turns)."""
    lanes: dict[str | None, list[Segment]] = {}
    for segment in segments:
        lanes.setdefault(segment.speaker, []).append(segment)
    return lanes or {None: []}


def _time_formatter(duration: float):
    from matplotlib.ticker import FuncFormatter

    if duration < 120:
        return FuncFormatter(lambda x, _: f"{x:.0f} s")
    return FuncFormatter(lambda x, _: f"{int(x // 60)}:{int(x % 60):02d}")


def draw_timeline(result: SegmentedFile, labels: Sequence[str] | None = None, title: str | None = None):
    """A matplotlib `Figure` (Agg canvas attached) of one file's segments; `labels` fixes the band order."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    labels = list(labels or (result.segments[0].probabilities if result.segments else []))
    colours = label_colours(labels)
    tiles = segment_tiles(result.segments)
    has_speech = result.speech is not None
    lanes = speaker_lanes(result.segments)
    heights = ([0.35] if has_speech else []) + [0.6] * len(lanes) + [1.0] * len(labels)
    figure = Figure(figsize=(12, 1.1 + 0.62 * sum(heights)), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(heights), 1, sharex=True, gridspec_kw={"height_ratios": heights})
    axes = list(np.atleast_1d(axes))
    duration = max(result.duration, max((s.end for s in result.segments), default=0.0))
    row = 0
    if has_speech:
        ax = axes[row]
        ax.broken_barh([(a, b - a) for a, b in result.speech], (0, 1), color="#4d4d4d")
        ax.set_ylabel("speech", rotation=0, ha="right", va="center")
        row += 1
    for lane, (speaker, segments) in enumerate(lanes.items()):
        ax, lane_tiles = axes[row + lane], segment_tiles(segments)
        for label in labels:
            spans = [(a, b - a) for (a, b), s in zip(lane_tiles, segments) if s.emotion == label]
            ax.broken_barh(spans, (0, 1), color=colours[label])
        ax.set_ylabel(speaker or "emotion", rotation=0, ha="right", va="center", fontweight="bold")
    ax = axes[row]
    ax.legend(
        handles=[Patch(color=colours[label], label=label) for label in labels],
        loc="lower left",
        bbox_to_anchor=(0, 1.02),
        ncol=len(labels),
        frameon=False,
        fontsize=9,
    )
    edges = np.repeat(np.asarray(tiles, dtype=float).reshape(-1, 2), 2, axis=1).ravel()  # a, a, b, b per tile
    row += len(lanes) - 1
    for label, ax in zip(labels, axes[row + 1 :]):
        # One polygon per band (0, p, p, 0 over each tile), not one artist per segment: an hour has thousands.
        heights = np.array([[0.0, s.probabilities[label], s.probabilities[label], 0.0] for s in result.segments])
        ax.fill(edges, heights.ravel(), color=colours[label], linewidth=0, alpha=0.85)
        ax.set_ylim(0, 1)
        ax.set_yticks([0, 1])
        ax.axhline(0.5, color="#bbbbbb", linewidth=0.6, linestyle=":")
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    for ax in axes[: row + 1]:
        ax.set_yticks([])
        ax.set_ylim(0, 1)
    for ax in axes:
        ax.set_xlim(0, duration)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    from matplotlib.ticker import MultipleLocator

    step = next((s for s in TICK_STEPS_S if duration / s <= 12), TICK_STEPS_S[-1])
    axes[-1].xaxis.set_major_locator(MultipleLocator(step))  # round times: every 30 s, 1 min, 5 min, ...
    axes[-1].xaxis.set_major_formatter(_time_formatter(duration))
    axes[-1].set_xlabel("time (min:s)" if duration >= 120 else "time")
    figure.suptitle(title or Path(result.file).name, x=0.01, ha="left", fontsize=11)
    return figure


def save_timeline_png(
    result: SegmentedFile, path: str | os.PathLike, labels: Sequence[str] | None = None, title: str | None = None
) -> Path:
    """Write the timeline of `result` to a PNG at `path` (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    draw_timeline(result, labels, title).savefig(path)
    return path


__all__ = ["draw_timeline", "label_colours", "save_timeline_png", "segment_tiles", "speaker_lanes"]
