"""Limits of `predict --segments`: windows of many lengths (voice-activity regions) run in at most 4 batch lengths
with unchanged scores, so memory does not grow with the file (issue 26.10); absurd --window/--hop values are refused
naming the flag (26.11); files and regions shorter than the 0.25 s minimum get no confident label (26.12).

The references are independent: each window cut out and written to its own file, scored alone by `predict_files`.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from gemo_clap_hf.errors import PredictionError
from gemo_clap_hf.inference.backends import load_backend
from gemo_clap_hf.inference.engine import WindowScorer, predict_files, segment_file
from gemo_clap_hf.inference.limits import MIN_CLIP_S
from gemo_clap_hf.inference.segments import SegmentOptions, plan_windows
from tests.helpers.tiny_models import random_clip
from tests.inference.test_predict_bulk import run_cli

RATE = 16000
# Speech regions (s) of many different lengths, as a voice-activity detector finds them; the 0.1 s one is a click.
REGIONS_S = [(0.0, 0.7), (1.0, 2.3), (2.9, 3.0), (3.5, 5.1), (5.6, 6.05), (6.5, 9.9), (10.4, 11.3), (12.0, 13.8)]


class FixedRegions:
    """A stand-in voice-activity detector that finds the given regions."""

    def __init__(self, regions_s):
        self.regions = [(round(a * RATE), round(b * RATE)) for a, b in regions_s]

    def speech_regions(self, blocks, num_samples):
        for _ in blocks:  # consume the stream as the real detector does
            pass
        return self.regions


@pytest.fixture(scope="module")
def speechy(tmp_path_factory):
    path = tmp_path_factory.mktemp("regions") / "speechy.wav"
    sf.write(path, random_clip(14.0, seed=11), RATE, subtype="FLOAT")
    return path


def _segment(checkpoint, path, window_s):
    scorer = load_backend(str(checkpoint))
    lengths = []
    audio = scorer.classifier.gemo_clap.audio_model
    hook = audio.register_forward_hook(lambda module, args, out: lengths.append(args[0].shape[-1]))
    try:
        options = SegmentOptions(window=2.0, hop=1.0)
        windows = WindowScorer(scorer, scorer.feature_extractor, batch_size=1, window_s=window_s)
        result = segment_file(windows, str(path), options, FixedRegions(REGIONS_S))
    finally:
        hook.remove()
    return result, lengths


def test_vad_windows_of_many_lengths_run_in_four_batch_lengths_with_the_cut_out_scores(
    tiny_checkpoint, speechy, tmp_path
):
    result, lengths = _segment(tiny_checkpoint, speechy, window_s=2.0)
    spans = [(round(s.start * RATE), round(s.end * RATE)) for s in result.segments]
    assert spans == plan_windows(FixedRegions(REGIONS_S).regions, 2 * RATE, RATE, round(MIN_CLIP_S * RATE))
    assert (round(2.9 * RATE), round(3.0 * RATE)) not in spans  # the 0.1 s click: no label
    assert len({end - start for start, end in spans}) >= 6  # the windows really come in many lengths...
    assert set(lengths) <= {RATE // 2, RATE, 3 * RATE // 2, 2 * RATE}  # ...the batches in quarter-window steps
    # Without the step (the old behaviour) the batch lengths follow the windows: the test sees the difference.
    _, unpadded = _segment(tiny_checkpoint, speechy, window_s=None)
    assert len(set(unpadded)) > 4
    # Padding is masked: every window's scores are those of the cut-out clip, scored alone.
    waveform = sf.read(speechy, dtype="float32")[0]
    cut = []
    for number, (start, end) in enumerate(spans):
        sf.write(tmp_path / f"w{number:02d}.wav", waveform[start:end], RATE, subtype="FLOAT")
        cut.append(str(tmp_path / f"w{number:02d}.wav"))
    alone = predict_files(str(tiny_checkpoint), None, cut, batch_size=1)
    for segment, reference in zip(result.segments, alone):
        np.testing.assert_allclose(
            list(segment.probabilities.values()), list(reference.probabilities.values()), atol=1e-5
        )


@pytest.mark.parametrize(
    ("window", "hop", "flag"),
    [
        ("inf", "inf", "--window must be a finite number"),
        ("nan", "1", "--window must be a finite number"),
        ("3", "nan", "--hop must be a finite number"),
        ("7200", "1", "--window 7200 is over 3600 s"),
        ("3", "0.001", "--hop 0.001 is under 0.01 s"),
        ("0.1", "0.1", "--window 0.1 is shorter than 0.25 s"),
        ("-3", "1", "--window -3 is shorter than 0.25 s"),
    ],
)
def test_absurd_window_and_hop_are_refused_naming_the_flag(capsys, tiny_checkpoint, speechy, window, hop, flag):
    code, _, err = run_cli(
        capsys, "predict", "--model", tiny_checkpoint, speechy, "--segments", "--window", window, "--hop", hop
    )
    assert code == 2 and flag in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "app", "--model", tiny_checkpoint, "--window", window, "--hop", hop)
    assert code == 2 and flag in err
    with pytest.raises(PredictionError, match=flag.split(" ")[0]):
        SegmentOptions(float(window), float(hop))


def test_a_file_under_the_minimum_gets_a_failure_in_predict_and_segments(capsys, tiny_checkpoint, tmp_path):
    sf.write(tmp_path / "click.wav", random_clip(0.01, seed=1), RATE)
    sf.write(tmp_path / "word.wav", random_clip(0.3, seed=2), RATE)
    for extra in ([], ["--segments"]):
        code, out, err = run_cli(capsys, "predict", "--model", tiny_checkpoint, tmp_path, *extra)
        assert code == 0 and "classified 1 of 2 file(s), 1 failed" in err
        assert "click.wav: it is 0.010 s long, shorter than the 0.25 s minimum" in err and "click.wav" not in out
