"""The long-recordings benchmark figure: its change scoring against a hand-made timeline, and its `--quick` run
(tiny towers, the real CLI in a child process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.long_recordings import change_figures
from gemo_clap_hf.data.synthetic.recording import Span
from gemo_clap_hf.inference.vad import vad_available

REPO = Path(__file__).resolve().parents[2]


def row(start, end, emotion):
    return {"start": str(start), "end": str(end), "emotion": emotion}


def test_changes_are_found_within_one_hop_and_false_switches_counted():
    spans = [Span(0.0, 3.0, "happy"), Span(4.0, 7.0, "happy"), Span(8.5, 11.0, "sad"), Span(12.0, 15.0, "angry")]
    rows = [row(0, 3, "happy"), row(4, 7, "happy"), row(8.5, 11, "happy"), row(12, 15, "angry")]
    # happy -> sad at 8.5 is missed (the timeline stays happy), sad -> angry at 12 is found
    figures = change_figures(rows, spans, hop=1.0)
    assert figures["true_changes"] == 2 and figures["found_within_one_hop"] == 1
    assert figures["predicted_switches"] == 1 and figures["switches_not_near_a_change"] == 0
    assert figures["speech_time_accuracy"] == pytest.approx((3 + 3 + 3) / (3 + 3 + 2.5 + 3), abs=1e-3)
    rows[1] = row(4, 7, "sad")  # a switch far from any change (at 4 s), and one at 8.5 s but to the wrong label
    figures = change_figures(rows, spans, hop=1.0)
    assert figures["switches_not_near_a_change"] == 1 and figures["found_within_one_hop"] == 1


@pytest.mark.slow  # the benchmark end to end: minutes of generated audio through the CLI
@pytest.mark.skipif(not vad_available(), reason="the figure runs --vad, which needs silero-vad (the [app] extra)")
def test_quick_long_recordings_figure_runs_the_cli():
    command = [sys.executable, "-m", "benchmarks", "--quick", "--figures", "long_recordings", "--long_minutes", "0.5"]
    command += ["--long_vad", "both"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    figure = json.loads(done.stdout)["long_recordings"]
    [recording] = figure["recordings"].values()
    assert recording["segments"] > 10 and recording["peak_rss_mib"]["median"] > 50
    assert recording["peak_rss_ratio_to_30s"] == 1.0 and figure["target_peak_rss_ratio"] == 1.3
    [everything] = figure["recordings_without_vad"].values()  # every window, pauses included: more of them
    assert everything["segments"] > recording["segments"] and everything["peak_rss_mib"]["median"] > 50
