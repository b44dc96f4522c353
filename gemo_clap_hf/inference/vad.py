"""Voice-activity detection for `gemo-clap predict --segments --vad`: where in a recording someone speaks.

Silero VAD (the `silero-vad` package, MIT) is used because its wheel ships the trained model files
(`silero_vad/data/*.onnx`): it works offline, with no download at first use (unlike torch.hub or webrtcvad-style
models fetched at run time), and its ONNX model runs on onnxruntime, so neither torchaudio nor a second torch
build is needed (the package's hard dependencies are only torch and packaging; torchaudio is an optional extra we
do not install). The model's 512-sample frame probabilities are computed block by block over a streamed file
(constant memory on an hour of audio) and turned into speech regions by silero's own
`get_speech_timestamps_from_probs`, the same rules its `get_speech_timestamps` applies to a whole tensor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import VadUnavailableError

VAD_RATE = 16000  # the rate the silero model runs at (8 kHz too; the package's audio is 16 kHz anyway)
FRAME = 512  # samples per silero frame at 16 kHz


@dataclass(frozen=True)
class VadSettings:
    """silero's thresholds. A pause shorter than `min_silence_s` stays inside a speech region: emotion is judged
    over phrases, so the gaps between syllables and words should not cut one (silero's 0.1 s default does)."""

    threshold: float = 0.5
    min_speech_s: float = 0.25
    min_silence_s: float = 0.5
    speech_pad_s: float = 0.03


def _load_model():
    try:
        from silero_vad import load_silero_vad
    except ImportError as error:
        raise VadUnavailableError(
            "--vad needs the silero-vad package: pip install 'gemo-clap-hf[app]' (or pip install silero-vad)."
        ) from error
    threads = torch.get_num_threads()
    try:
        return load_silero_vad(onnx=True)
    finally:
        torch.set_num_threads(threads)  # importing silero_vad.model sets torch to 1 thread for the whole process


class SpeechDetector:
    """Speech regions of a stream of 16 kHz blocks; one instance holds one ONNX session (load it once)."""

    def __init__(self, settings: VadSettings | None = None):
        self.settings = settings or VadSettings()
        self.model = _load_model()

    def frame_probabilities(self, blocks: Iterable[np.ndarray]) -> np.ndarray:
        """silero's speech probability of every 512-sample frame, carrying the frame grid across block edges."""
        self.model.reset_states()
        probabilities, carry = [], np.zeros(0, dtype=np.float32)
        for block in blocks:
            samples = np.concatenate([carry, block]) if len(carry) else block
            whole = len(samples) // FRAME * FRAME
            for start in range(0, whole, FRAME):
                probabilities.append(float(self.model(torch.from_numpy(samples[start : start + FRAME]), VAD_RATE)))
            carry = samples[whole:]
        if len(carry):  # the last partial frame, zero-padded as get_speech_timestamps pads it
            frame = np.pad(carry, (0, FRAME - len(carry)))
            probabilities.append(float(self.model(torch.from_numpy(frame), VAD_RATE)))
        return np.asarray(probabilities, dtype=np.float32)

    def speech_regions(self, blocks: Iterable[np.ndarray], num_samples: int) -> list[tuple[int, int]]:
        """(start, end) sample ranges of speech in a recording of `num_samples` 16 kHz samples."""
        from silero_vad import get_speech_timestamps_from_probs

        settings = self.settings
        stamps = get_speech_timestamps_from_probs(
            self.frame_probabilities(blocks).tolist(),
            sampling_rate=VAD_RATE,
            threshold=settings.threshold,
            min_speech_duration_ms=int(settings.min_speech_s * 1000),
            min_silence_duration_ms=int(settings.min_silence_s * 1000),
            speech_pad_ms=int(settings.speech_pad_s * 1000),
            audio_length_samples=num_samples,
        )
        return [(int(s["start"]), min(int(s["end"]), num_samples)) for s in stamps]


def vad_available() -> bool:
    """Whether silero-vad is importable (tests and the app check before offering --vad)."""
    from importlib.util import find_spec

    return find_spec("silero_vad") is not None


__all__ = ["SpeechDetector", "VadSettings", "VadUnavailableError", "vad_available"]
