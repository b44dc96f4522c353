"""Audio sent over the wire: one request's audio and options, scored through the engine like files on disk.

A request body is either the audio itself (any format soundfile reads: `audio/*` or `application/octet-stream`) or
the Hugging Face audio-classification task's JSON, `{"inputs": <base64 audio>, "parameters": {"top_k": ...,
"function_to_apply": ...}}`. `parse_request` turns either into an `AudioRequest`; `score_requests` scores a batch of
them with `iter_predictions` (or `iter_segmented_files` for `segments`) on temporary files, so the Ray Serve endpoint
(`serving`), the Inference Endpoints handler (`endpoint`) and `gemo-clap predict` share one scoring path.

An answer is the pipeline's `[{"label", "score"}, ...]`, best first; for ML-GEmo-CLAP models every element also
carries the clip's `gender` and `gender_score` (a superset of the pipeline's element, so pipeline clients still parse
it). A segments answer is the list of `predict --segments` rows. Anything wrong with a request is a `RequestError`
with the HTTP status it deserves (400 bad audio or parameters, 413 too large, 415 wrong content type).
"""

from __future__ import annotations

import base64
import binascii
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.audio import audio_info
from ..errors import GEmoClapAudioError, PredictionError
from .engine import iter_predictions, iter_segmented_files
from .predictions import Failure, Prediction, SegmentedFile, ranked
from .segments import SegmentOptions

DEFAULT_MAX_BYTES = 25_000_000  # about 13 min of 16 kHz 16-bit mono WAV
# A compressed body can decode to far more audio than its size suggests (a few kB of FLAC silence can be an hour):
# the length is read from the header before anything is decoded, and refused past this.
DEFAULT_MAX_SECONDS = 600.0
RAW_CONTENT_TYPES = ("audio/", "application/octet-stream")
REQUEST_AUDIO = "the request body"


class RequestError(PredictionError):
    """A request that cannot be answered as sent; `status` is its HTTP status (400, 413 or 415)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class AudioRequest:
    """One clip to score and how to answer: `top_k` emotions (None: all), or the segment rows."""

    audio: bytes
    top_k: int | None = None
    segments: bool = False


def _check_top_k(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RequestError(f"parameters.top_k must be a whole number of at least 1, got {json.dumps(value)}.")
    return value


def _check_function(value) -> None:
    if value not in (None, "softmax"):
        raise RequestError(
            f"parameters.function_to_apply {json.dumps(value)} is not served: GEmo-CLAP's scores are a softmax over "
            'its label prompts; send "softmax" or leave it out.'
        )


def _decode_inputs(inputs) -> bytes:
    if isinstance(inputs, (bytes, bytearray)):
        return bytes(inputs)
    if not isinstance(inputs, str):
        raise RequestError(
            f'"inputs" must be the audio file\'s bytes encoded as a base64 string, got {type(inputs).__name__}.'
        )
    try:
        return base64.b64decode(inputs.split(",", 1)[-1] if inputs.startswith("data:") else inputs, validate=True)
    except (binascii.Error, ValueError) as error:
        raise RequestError(
            f'"inputs" is not valid base64 ({error}); encode the audio file\'s bytes as base64.'
        ) from None


def _audio(data: bytes) -> bytes:
    if not data:
        raise RequestError("the request holds no audio (0 bytes); send an audio file (WAV, FLAC, OGG, MP3).")
    return data


def parse_payload(payload, segments: bool = False) -> AudioRequest:
    """An `AudioRequest` from the Inference Endpoints form: `{"inputs": bytes or base64, "parameters": {...}}`
    (`parameters`: `top_k`, `function_to_apply` ("softmax" only), `segments`), or raw audio bytes."""
    if isinstance(payload, (bytes, bytearray)):
        return AudioRequest(_audio(bytes(payload)), segments=segments)
    if not isinstance(payload, dict) or "inputs" not in payload:
        raise RequestError('send the audio file as the body, or JSON {"inputs": <base64 audio>, "parameters": {...}}.')
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise RequestError(f'"parameters" must be a JSON object, got {type(parameters).__name__}.')
    unknown = sorted(set(parameters) - {"top_k", "function_to_apply", "segments"})
    if unknown:
        raise RequestError(f"unknown parameters {unknown}; this endpoint takes top_k, function_to_apply, segments.")
    _check_function(parameters.get("function_to_apply"))
    segments = bool(parameters.get("segments", segments))
    return AudioRequest(_audio(_decode_inputs(payload["inputs"])), _check_top_k(parameters.get("top_k")), segments)


def parse_request(body: bytes, content_type: str | None, segments: bool = False) -> AudioRequest:
    """An `AudioRequest` from an HTTP body and its content type: audio bytes, or the task's JSON."""
    kind = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    if kind.startswith(RAW_CONTENT_TYPES):
        return parse_payload(body, segments)
    if kind == "application/json":
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RequestError(f"the body is not valid JSON ({error}).") from None
        return parse_payload(payload, segments)
    raise RequestError(
        f"content type {kind!r} is not served: send the audio file with Content-Type audio/* (e.g. audio/wav) or "
        'application/octet-stream, or JSON {"inputs": <base64 audio>} with Content-Type application/json.',
        status=415,
    )


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise RequestError(
            f"the body has {size} bytes, over this server's limit of {max_bytes} (--max-bytes); send a shorter "
            "clip, or cut long recordings into parts.",
            status=413,
        )


def emotion_answer(prediction: Prediction, top_k: int | None) -> list[dict]:
    """The pipeline's `[{"label", "score"}, ...]` (best first, `top_k` of them), plus the gender for ML models."""
    labels = list(prediction.probabilities)
    answer = ranked(torch.tensor([prediction.probabilities[k] for k in labels]), labels, top_k)
    if prediction.genders:
        best = prediction.genders[0]
        for element in answer:
            element.update(gender=best["label"], gender_score=best["score"])
    return answer


def check_duration(path: str, max_seconds: float) -> None:
    """A 413 `RequestError` when the audio at `path` lasts longer than `max_seconds` (read from its header)."""
    try:
        seconds = audio_info(path).duration
    except (GEmoClapAudioError, OSError):
        return  # unreadable: the engine reports it with its own message
    if seconds > max_seconds:
        raise RequestError(
            f"the audio lasts {seconds:.1f} s, over this server's limit of {max_seconds:g} s (--max-seconds); send "
            "a shorter clip, or cut the recording into parts.",
            status=413,
        )


def _segment_row(segment) -> dict:
    row = segment.to_row()
    del row["file"]  # a temporary file's name: the client knows what it sent
    return row


def _failure(result: Failure, path: str) -> RequestError:
    reason = result.reason.replace(f"b{path!r}", REQUEST_AUDIO).replace(repr(path), REQUEST_AUDIO)
    return RequestError(reason.replace(path, REQUEST_AUDIO))


def score_requests(
    scorer,
    requests: Sequence[AudioRequest],
    segment_options: SegmentOptions | None = None,
    batch_size: int = 16,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> list[list[dict] | RequestError]:
    """Each request's answer, or the `RequestError` that explains why its audio cannot be scored.

    The clips are written to temporary files and scored by the engine together (`iter_predictions`, batched by
    length); segment requests go through `iter_segmented_files`. A bad clip fails alone: the others are answered;
    so does a clip longer than `max_seconds`, before it is decoded.
    """
    answers: list[list[dict] | RequestError | None] = [None] * len(requests)
    with tempfile.TemporaryDirectory(prefix="gemo-clap-requests-") as folder:
        paths = []
        for index, request in enumerate(requests):
            path = Path(folder) / f"request-{index}"
            path.write_bytes(request.audio)
            paths.append(str(path))
            try:
                check_duration(str(path), max_seconds)
            except RequestError as error:
                answers[index] = error
        position = {path: index for index, path in enumerate(paths)}
        clips = [paths[i] for i, r in enumerate(requests) if not r.segments and answers[i] is None]
        found = iter_predictions(scorer, scorer.feature_extractor, clips, batch_size, num_workers=1) if clips else []
        for result in found:
            index = position[result.file]
            if isinstance(result, Failure):
                answers[index] = _failure(result, result.file)
            else:
                answers[index] = emotion_answer(result, requests[index].top_k)
        long = [paths[i] for i, r in enumerate(requests) if r.segments and answers[i] is None]
        options = segment_options or SegmentOptions()
        for result in iter_segmented_files(scorer, scorer.feature_extractor, long, options, batch_size):
            index = position[result.file]
            if isinstance(result, SegmentedFile):
                answers[index] = [_segment_row(segment) for segment in result.segments]
            else:
                answers[index] = _failure(result, result.file)
    return answers


__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_SECONDS",
    "AudioRequest",
    "RequestError",
    "check_duration",
    "check_size",
    "emotion_answer",
    "parse_payload",
    "parse_request",
    "score_requests",
]
