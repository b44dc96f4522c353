"""`gemo-clap serve`: the engine as an HTTP endpoint on Ray Serve, with dynamic batching (`@serve.batch`).

POST the audio (or the task's JSON, see `audio_requests`) to `/`; the answer is the pipeline's
`[{"label", "score"}, ...]` (with the gender for ML models), or with `?segments=true` the segment rows. Requests that
arrive together are scored as one length-bucketed batch by `audio_requests.score_requests` (the engine's
`iter_predictions`): up to `max_batch_size` clips, waiting at most `batch_wait_ms` for a batch to fill. GET `/`
answers with the model's labels (a health check).

Every request is answered: bad audio or parameters get 400 with the package's message, a body over `max_bytes` 413
(refused from its Content-Length before it is read when it has one), a wrong content type 415; an unexpected error
is a 500 for that request only. Scoring runs in a worker thread, one batch at a time, so the replica keeps accepting
requests (which fill the next batch) while a batch is scored.

Needs the [ray] extra: pip install 'gemo-clap-hf[ray]'.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

from ..errors import GEmoClapError, PredictionError
from .audio_requests import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_SECONDS,
    RequestError,
    check_size,
    parse_request,
    score_requests,
)
from .backends import load_backend
from .segments import SegmentOptions

logger = logging.getLogger(__name__)

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
DEFAULT_MAX_BATCH_SIZE, DEFAULT_BATCH_WAIT_MS = 16, 10.0


def import_ray_serve():
    try:
        from ray import serve
    except ImportError as error:
        raise PredictionError("serving needs Ray Serve: pip install 'gemo-clap-hf[ray]'.") from error
    return serve


serve = import_ray_serve()


def _flag(value: str | None) -> bool:
    if value is None:
        return False
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no", ""):
        return False
    raise RequestError(f"?segments={value!r}: use ?segments=true or leave it out.")


async def read_body(request, max_bytes: int) -> bytes:
    """The request's body, or a 413 `RequestError` as soon as it is known to pass `max_bytes`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        check_size(int(declared), max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        check_size(len(body), max_bytes)
    return bytes(body)


class EmotionService:
    """One Serve replica: the model loaded once (torch or onnx `Scorer`), and the request handler."""

    def __init__(
        self,
        model: str,
        backend: str = "torch",
        threads: int | None = None,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        batch_wait_ms: float = DEFAULT_BATCH_WAIT_MS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_options: SegmentOptions | None = None,
        max_seconds: float = DEFAULT_MAX_SECONDS,
    ):
        self.max_seconds = max_seconds
        self.scorer = load_backend(model, backend, None, threads)
        self.max_bytes, self.max_batch_size = max_bytes, max_batch_size
        self.segment_options = segment_options or SegmentOptions()
        self.score_batch.set_max_batch_size(max_batch_size)
        self.score_batch.set_batch_wait_timeout_s(batch_wait_ms / 1000)
        self._model_lock = threading.Lock()  # one batch on the model at a time (its threads are all the cores')
        config = self.scorer.config
        self.info = {
            "model": model,
            "backend": backend,
            "labels": list(config.emotion_labels),
            "genders": list(config.gender_labels) if config.loss_type == "ml" else None,
            "max_batch_size": max_batch_size,
            "max_bytes": max_bytes,
            "max_seconds": max_seconds,
        }

    def _score(self, requests):
        with self._model_lock:
            return score_requests(self.scorer, requests, self.segment_options, self.max_batch_size, self.max_seconds)

    @serve.batch(max_batch_size=DEFAULT_MAX_BATCH_SIZE, batch_wait_timeout_s=DEFAULT_BATCH_WAIT_MS / 1000)
    async def score_batch(self, requests):
        return await asyncio.to_thread(self._score, requests)

    async def answer(self, request) -> tuple[int, object]:
        """(HTTP status, JSON answer) of one request; never raises."""
        try:
            if request.method == "GET":
                return 200, self.info
            if request.method != "POST":
                return 405, {"error": f"{request.method} is not served: POST the audio to score it, GET for info."}
            body = await read_body(request, self.max_bytes)
            parsed = parse_request(
                body, request.headers.get("content-type"), _flag(request.query_params.get("segments"))
            )
            if parsed.segments:  # a long recording: its windows are batched on their own
                [answer] = await asyncio.to_thread(self._score, [parsed])
            else:
                answer = await self.score_batch(parsed)
            if isinstance(answer, RequestError):
                raise answer
            return 200, answer
        except RequestError as error:
            return error.status, {"error": str(error)}
        except GEmoClapError as error:
            return 400, {"error": str(error)}
        except Exception as error:  # noqa: BLE001 - a bug must cost one request, never the replica
            logger.exception("gemo-clap serve: request failed")
            return 500, {"error": f"internal error ({type(error).__name__}: {error}); the server is still up."}

    async def __call__(self, request):
        from starlette.responses import JSONResponse

        status, answer = await self.answer(request)
        return JSONResponse(answer, status_code=status)


def build_app(
    model: str,
    backend: str = "torch",
    replicas: int = 1,
    threads: int | None = None,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    batch_wait_ms: float = DEFAULT_BATCH_WAIT_MS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    segment_options: SegmentOptions | None = None,
    max_seconds: float = DEFAULT_MAX_SECONDS,
):
    """The Serve application: `replicas` copies of `EmotionService`, each using `threads` CPUs (default 1)."""
    if replicas < 1:
        raise PredictionError(f"--replicas must be at least 1, got {replicas}.")
    if max_batch_size < 1:
        raise PredictionError(f"--max-batch-size must be at least 1, got {max_batch_size}.")
    if batch_wait_ms < 0:
        raise PredictionError(f"--batch-wait-ms must be 0 or more, got {batch_wait_ms}.")
    if max_bytes < 1:
        raise PredictionError(f"--max-bytes must be at least 1, got {max_bytes}.")
    if not max_seconds > 0:
        raise PredictionError(f"--max-seconds must be positive, got {max_seconds}.")
    if Path(model).expanduser().exists():  # replicas may start in another folder
        model = str(Path(model).expanduser().resolve())
    deployment = serve.deployment(EmotionService, name="gemo-clap").options(
        num_replicas=replicas,
        ray_actor_options={"num_cpus": threads or 1},
        max_ongoing_requests=max(32, 2 * max_batch_size),
    )
    return deployment.bind(
        model, backend, threads, max_batch_size, batch_wait_ms, max_bytes, segment_options, max_seconds
    )


def start_server(app, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, address: str | None = None) -> str:
    """Start Ray (a local cluster, or join `address`), Serve's HTTP proxy on host:port, and `app`; its URL."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    serve.start(http_options={"host": host, "port": port})
    serve.run(app, name="gemo-clap", route_prefix="/")
    return f"http://{host}:{port}/"


__all__ = ["EmotionService", "build_app", "read_body", "start_server"]
