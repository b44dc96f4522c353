"""Emotion over time while the audio is still coming in: `SegmentStream` takes chunks of any length (a live call, a
microphone, a pipe from ffmpeg) and returns each window's row as soon as that window is complete.

The rows are those of `predict_segments` on the whole recording (to 1e-4, whatever the chunk sizes): the windows are
planned by the same rules (`segments.plan_windows`, checked against it online: `_RegionWindows`), scored by the same
`engine.WindowScorer`, and merged by the same `merge_segments`. Memory is bounded by the window, not the stream:
only the samples a future window can still need are kept (`held`: at most one window plus the chunk being pushed;
with the VAD, plus the 0.5 s of silence that closes a stretch of speech and one 32 ms silero frame).

Chunks at another sampling rate are resampled with soxr's streaming resampler (`soxr.ResampleStream`, the HQ
filter that `librosa.resample(res_type="soxr_hq")` runs on a whole file): its output equals resampling the whole
recording at once.

Streaming VAD (`options.vad`): silero runs frame by frame (512 samples, its state carried across chunks), so its
frame probabilities are those of the file path. Speech regions follow silero's own rules
(`get_speech_timestamps_from_probs`, replayed online by `_OnlineSpeech`): a region opens at the first speech frame
(minus the 30 ms pad) and closes after `min_silence_s` (0.5 s) below the lower threshold; the regions are exactly
the file path's. Inside an open region a window is emitted once the audio has reached its end; the last window of a
region (which ends on the region's end) waits until the region closes, i.e. 0.5 s of silence later.

`flush()` ends the stream: the last region closes at the end of the audio and its remaining windows are returned.
While the stream runs the number of segments is unknown, so each segment's `count` is None (`segments` in rows).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import PredictionError
from ..feature_extraction_gemo_clap import to_mono_float32
from .backends import prepare_scorer
from .engine import DEFAULT_BATCH_SIZE, WindowScorer, check_batch_size, speech_detector
from .predictions import Segment
from .segments import SegmentOptions, continues, merge_segments

STREAM_NAME = "-"


class SampleBuffer:
    """The samples [offset, offset + held) of a stream in one numpy array that grows to the largest span needed;
    `trim(start)` forgets the samples before `start`. Appending copies only the new samples (amortised), so even
    one-sample chunks cost O(1) per sample."""

    def __init__(self):
        self.data = np.zeros(0, dtype=np.float32)
        self.offset = 0  # stream position of data[self.begin]
        self.begin = 0
        self.held = 0

    @property
    def end(self) -> int:
        return self.offset + self.held

    def append(self, samples: np.ndarray) -> None:
        needed = self.held + len(samples)
        if self.begin + needed > len(self.data):  # compact to the front, growing the array only when it is full
            storage = self.data if needed <= len(self.data) else np.zeros(max(needed, 2 * len(self.data)), np.float32)
            storage[: self.held] = self.data[self.begin : self.begin + self.held]
            self.data, self.begin = storage, 0
        self.data[self.begin + self.held : self.begin + needed] = samples
        self.held = needed

    def trim(self, start: int) -> None:
        drop = min(max(0, start - self.offset), self.held)
        self.begin, self.offset, self.held = self.begin + drop, self.offset + drop, self.held - drop

    def cut(self, start: int, end: int) -> np.ndarray:
        if start < self.offset or end > self.end:
            raise AssertionError(f"samples [{start}, {end}) are no longer held ([{self.offset}, {self.end}))")
        first = self.begin + start - self.offset
        return self.data[first : first + end - start].copy()


@dataclass
class _RegionWindows:
    """The windows of one region whose end is not known yet, planned online exactly as `plan_windows` plans them
    once the end is known: every `hop` from `begin` while the window fits, the last one ending on the end."""

    begin: int
    window: int
    hop: int
    next_start: int = -1
    emitted: int = 0

    def __post_init__(self):
        self.next_start = self.begin

    def upto(self, known: int) -> list[tuple[int, int]]:
        """The windows certain to be planned once the region is known to last at least until `known`."""
        found = []
        while self.next_start + self.window <= known:
            found.append((self.next_start, self.next_start + self.window))
            self.next_start += self.hop
        self.emitted += len(found)
        return found

    def close(self, end: int) -> list[tuple[int, int]]:
        """The remaining windows of the region [begin, end)."""
        if end <= self.begin:
            return []
        if end - self.begin <= self.window:
            return [] if self.emitted else [(self.begin, end)]
        found = self.upto(end)
        if self.next_start - self.hop + self.window < end:
            found.append((end - self.window, end))
        return found

    def keep_from(self, known: int) -> int:
        """The first sample a window of this region may still need (the last window ends at or after `known`)."""
        return max(self.begin, min(self.next_start, known - self.window))


class _OnlineSpeech:
    """silero's speech regions of a stream, frame by frame: the state machine of `get_speech_timestamps_from_probs`
    (with no maximum speech length) replayed as frames arrive, so the regions equal those of the whole file.

    `feed` returns the regions that closed, padded as silero pads them; `open_start` / `known_end` describe the
    region still open (its padded start, and a sample its end cannot fall before)."""

    def __init__(self, detector, rate: int):
        from .vad import FRAME, VAD_RATE

        if rate != VAD_RATE:
            raise PredictionError(f"--vad streams audio at {VAD_RATE} Hz; this model's feature extractor uses {rate}.")
        settings = detector.settings
        self.detector, self.frame = detector, FRAME
        self.threshold = settings.threshold
        self.negative = max(settings.threshold - 0.15, 0.01)  # silero's default neg_threshold
        # silero's own conversions (ms as integers, as SpeechDetector passes them)
        self.min_speech = rate * int(settings.min_speech_s * 1000) / 1000
        self.min_silence = rate * int(settings.min_silence_s * 1000) / 1000
        self.pad = rate * int(settings.speech_pad_s * 1000) / 1000
        if self.min_silence < 2 * self.pad:
            raise PredictionError(
                "streaming --vad needs min_silence_s >= 2 * speech_pad_s (silero splits shorter gaps between "
                "regions it has not closed yet); raise min_silence_s."
            )
        detector.model.reset_states()
        self.carry = np.zeros(0, dtype=np.float32)
        self.frames = 0
        self.triggered, self.start, self.temp_end = False, 0, 0

    def _probability(self, frame: np.ndarray) -> float:
        from .vad import VAD_RATE

        return float(self.detector.model(torch.from_numpy(frame), VAD_RATE))

    def _step(self, probability: float) -> tuple[int, int] | None:
        current = self.frame * self.frames
        self.frames += 1
        if probability >= self.threshold and self.temp_end:
            self.temp_end = 0
        if probability >= self.threshold and not self.triggered:
            self.triggered, self.start = True, current
            return None
        if probability < self.negative and self.triggered:
            if not self.temp_end:
                self.temp_end = current
            if current - self.temp_end < self.min_silence:
                return None
            start, end = self.start, self.temp_end
            self.triggered, self.temp_end = False, 0
            if end - start > self.min_speech:
                return int(max(0, start - self.pad)), int(end + self.pad)  # before the stream's end: no clipping
        return None

    def feed(self, samples: np.ndarray) -> list[tuple[int, int]]:
        samples = np.concatenate([self.carry, samples]) if len(self.carry) else samples
        whole = len(samples) // self.frame * self.frame
        closed = []
        for start in range(0, whole, self.frame):
            region = self._step(self._probability(samples[start : start + self.frame]))
            if region is not None:
                closed.append(region)
        self.carry = samples[whole:].copy()
        return closed

    @property
    def open_start(self) -> int | None:
        return int(max(0, self.start - self.pad)) if self.triggered else None

    @property
    def known_end(self) -> int:
        """The open region ends at or after this sample (and, past `min_speech`, it survives silero's filter)."""
        end = self.temp_end or self.frame * self.frames
        return end if end - self.start > self.min_speech else self.start

    def finish(self, total: int) -> list[tuple[int, int]]:
        """The regions the end of the stream closes (`total` samples in all)."""
        closed = []
        if len(self.carry):  # the last partial frame, zero-padded as get_speech_timestamps pads it
            region = self._step(self._probability(np.pad(self.carry, (0, self.frame - len(self.carry)))))
            if region is not None:
                closed.append(region)
            self.carry = self.carry[:0]
        if self.triggered and total - self.start > self.min_speech:
            closed.append((int(max(0, self.start - self.pad)), total))
        self.triggered = False
        return closed

    def keep_from(self) -> int:
        """The first sample the next region can start at (its start is padded back into the past)."""
        return int(max(0, self.frame * self.frames - self.pad))


class _OnlineMerge:
    """`merge_segments` as segments arrive: a run is returned once a segment that does not continue it arrives."""

    def __init__(self):
        self.run: list[Segment] = []
        self.count = 0

    def _close(self) -> list[Segment]:
        if not self.run:
            return []
        [merged] = merge_segments(self.run)
        merged.index, merged.count = self.count, None
        self.count += 1
        self.run = []
        return [merged]

    def add(self, segments: Iterable[Segment]) -> list[Segment]:
        done = []
        for segment in segments:
            last = self.run[-1] if self.run else None
            if last is not None and not continues(last, segment):
                done += self._close()
            self.run.append(segment)
        return done

    def finish(self) -> list[Segment]:
        return self._close()


class SegmentStream:
    """Emotion window by window over a stream: `push(chunk)` returns the segments completed by that chunk, `flush()`
    the rest at the end of the stream.

    `classifier` is as for `predict_segments` (a loaded classifier or `Scorer`, or a model folder / Hub id loaded
    here with `backend`, `device`, `threads`); `options` are `--segments`' (window, hop, vad, merge). Chunks are
    1-D arrays (or 2-D (time, channels), mixed down) of float or integer PCM at `sampling_rate` (default the
    model's; another rate is resampled). Segments carry `name` as their file, their number in `index`, and
    `count` None. `held` is the number of samples kept, `total` the number received (at the model's rate).
    """

    def __init__(
        self,
        classifier,
        feature_extractor=None,
        options: SegmentOptions | None = None,
        sampling_rate: int | None = None,
        name: str = STREAM_NAME,
        batch_size: int = DEFAULT_BATCH_SIZE,
        device=None,
        backend: str | None = None,
        threads: int | None = None,
    ):
        check_batch_size(batch_size)
        self.options = options or SegmentOptions()
        scorer, feature_extractor = prepare_scorer(classifier, feature_extractor, backend, device, threads)
        self.scorer = WindowScorer(scorer, feature_extractor, batch_size)
        self.rate = feature_extractor.sampling_rate
        self.input_rate = sampling_rate or self.rate
        self.name = name
        self.window = int(round(self.options.window * self.rate))
        self.hop = int(round(self.options.hop * self.rate))
        self.buffer = SampleBuffer()
        self.speech = _OnlineSpeech(speech_detector(True), self.rate) if self.options.vad else None
        self.regions: list[tuple[float, float]] = []  # speech regions found so far (s), with the VAD
        self.open = None if self.options.vad else _RegionWindows(0, self.window, self.hop)
        self.merger = _OnlineMerge() if self.options.merge else None
        self.resampler = None
        self.count = 0
        self.finished = False

    @property
    def total(self) -> int:
        return self.buffer.end

    @property
    def held(self) -> int:
        return self.buffer.held

    def _samples(self, chunk, sampling_rate: int | None, last: bool = False) -> np.ndarray:
        array = np.asarray(chunk)
        if array.size == 0:
            return np.zeros(0, np.float32)
        if array.ndim == 2:  # (time, channels)
            array = to_mono_float32(array.reshape(-1), self.name).reshape(array.shape).mean(axis=1)
        samples = to_mono_float32(array, self.name)
        rate = sampling_rate or self.input_rate
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise PredictionError(f"stream {self.name!r}: sampling rate {rate!r} is not a positive number of Hz.")
        if self.resampler is None and rate == self.rate:
            return samples
        if self.resampler is None:
            import soxr

            self.resampler = soxr.ResampleStream(rate, self.rate, 1, dtype="float32", quality="HQ")
            self.input_rate = rate
        elif rate != self.input_rate:
            raise PredictionError(
                f"stream {self.name!r}: a chunk at {rate} Hz after chunks at {self.input_rate} Hz; one stream has "
                "one sampling rate (start a new SegmentStream for the other)."
            )
        return self.resampler.resample_chunk(samples, last=last).astype(np.float32, copy=False)

    def _windows(self, samples: np.ndarray, last: bool) -> list[tuple[int, int]]:
        """Append `samples` and return the windows they complete (all the remaining ones when `last`)."""
        self.buffer.append(samples)
        total = self.buffer.end
        if self.speech is None:
            return self.open.close(total) if last else self.open.upto(total)
        windows = []
        closed = self.speech.feed(samples)
        if last:
            closed += self.speech.finish(total)
        for begin, end in closed:  # a region that opened and closed inside these samples has no planner yet
            planner = self.open if self.open is not None else _RegionWindows(begin, self.window, self.hop)
            windows += planner.close(min(end, total))
            self.regions.append((begin / self.rate, min(end, total) / self.rate))
            self.open = None
        if self.speech.open_start is not None and not last:
            if self.open is None:
                self.open = _RegionWindows(self.speech.open_start, self.window, self.hop)
            windows += self.open.upto(self.speech.known_end)
        return windows

    def _trim(self) -> None:
        total = self.buffer.end
        if self.speech is None:
            self.buffer.trim(self.open.keep_from(total))
        elif self.open is not None:
            self.buffer.trim(self.open.keep_from(self.speech.known_end))
        else:
            self.buffer.trim(self.speech.keep_from())

    def _score(self, windows: list[tuple[int, int]]) -> list[Segment]:
        if not windows:
            return []
        clips = [self.buffer.cut(start, end) for start, end in windows]
        segments = self.scorer.score(self.name, windows, clips)
        for segment in segments:
            segment.index, segment.count = self.count, None
            self.count += 1
        return self.merger.add(segments) if self.merger is not None else segments

    def push(self, chunk, sampling_rate: int | None = None) -> list[Segment]:
        """Add the next chunk; returns the segments it completes (often none), in time order."""
        if self.finished:
            raise PredictionError(f"stream {self.name!r} was flushed; start a new SegmentStream for more audio.")
        windows = self._windows(self._samples(chunk, sampling_rate), last=False)
        segments = self._score(windows)
        self._trim()
        return segments

    def flush(self) -> list[Segment]:
        """End the stream: the segments still to come (the last window ends on the stream's end)."""
        if self.finished:
            return []
        rest = np.zeros(0, np.float32)
        if self.resampler is not None:  # the resampler's filter tail
            rest = self.resampler.resample_chunk(rest, last=True).astype(np.float32, copy=False)
        segments = self._score(self._windows(rest, last=True))
        self.finished = True
        if self.merger is not None:
            segments += self.merger.finish()
        self.buffer.trim(self.buffer.end)
        return segments

    @property
    def duration(self) -> float:
        """Seconds of audio received so far."""
        return self.total / self.rate


def stream_segments(stream: SegmentStream, chunks: Iterable, sampling_rate: int | None = None):
    """Each segment of a whole stream of chunks, as soon as it is complete (then the flushed rest)."""
    for chunk in chunks:
        yield from stream.push(chunk, sampling_rate)
    yield from stream.flush()


__all__ = ["STREAM_NAME", "SampleBuffer", "SegmentStream", "stream_segments"]
