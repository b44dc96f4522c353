"""Past one machine (`--figures serving`, on request): the Ray Serve endpoint and `predict --ray` on 2 CPU cores.

On a local Ray cluster of 2 CPUs, with the harness' random-weight classifier saved to a folder (speed does not depend
on the weights):

- `endpoint`: one `gemo-clap serve` replica (2 threads) queried over loopback HTTP by 1, 4 and 16 concurrent
  clients, each posting WAV clips of `clip_seconds` back to back; requests/s and p50/p99 latency, with dynamic
  batching (`--max-batch-size 16 --batch-wait-ms 10`) and without (`--max-batch-size 1`). Every answer must be 200.
- `bulk`: clips/s of `gemo-clap predict` on the same clips folder, plain (2 threads) and with `--ray` (2 actors of
  1 CPU: the cluster's two cores). The --ray time includes starting the actors and loading the model in each.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from gemo_clap_hf.cli.bench import write_test_clips
from gemo_clap_hf.demo.towers import train_prompt_tokenizer
from gemo_clap_hf.feature_extraction_gemo_clap import GEmoClapFeatureExtractor

from .settings import SAMPLING_RATE, Settings

CLIENTS = (1, 4, 16)
CPUS = 2
BATCHING = {"dynamic_batching": 16, "no_batching": 1}  # --max-batch-size


def latency_summary(latencies: list[float], seconds: float) -> dict:
    """requests/s over the wall time, and the median and 99th-percentile latency (ms) of the requests."""
    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / seconds, 2),
        "p50_ms": round(1000 * float(np.percentile(latencies, 50)), 1),
        "p99_ms": round(1000 * float(np.percentile(latencies, 99)), 1),
    }


def load_test(url: str, bodies: list[bytes], clients: int, requests_per_client: int) -> dict:
    """`clients` threads posting `bodies` in turn, `requests_per_client` each; every answer must be a 200."""
    import requests

    def client(offset: int) -> list[float]:
        times = []
        with requests.Session() as session:
            for index in range(requests_per_client):
                body = bodies[(offset + index) % len(bodies)]
                begin = time.perf_counter()
                answer = session.post(url, data=body, headers={"Content-Type": "audio/wav"}, timeout=600)
                times.append(time.perf_counter() - begin)
                if answer.status_code != 200:
                    raise RuntimeError(f"the endpoint answered {answer.status_code}: {answer.text[:300]}")
        return times

    begin = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [t for times in pool.map(client, range(clients)) for t in times]
    return latency_summary(latencies, time.perf_counter() - begin)


def measure_endpoint(model: str, bodies: list[bytes], requests_total: int) -> dict:
    import socket

    from ray import serve

    from gemo_clap_hf.inference.serving import build_app, start_server

    figure = {}
    for name, max_batch_size in BATCHING.items():
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        url = start_server(build_app(model, threads=CPUS, max_batch_size=max_batch_size), port=port)
        load_test(url, bodies, 2, 2)  # warm-up
        figure[name] = {
            f"{clients}_clients": load_test(url, bodies, clients, max(2, requests_total // clients))
            for clients in CLIENTS
        }
        serve.shutdown()
    return figure


def measure_bulk(model: str, files: list[str]) -> dict:
    from gemo_clap_hf.cli.predict import run_predict

    figure = {}
    for name, options in {"predict": {"threads": CPUS}, "predict_ray": {"threads": 1, "ray": "local"}}.items():
        options["ray_workers"] = CPUS if "ray" in options else None
        _, summary = run_predict(model, files, quiet=True, **options)
        assert summary.classified == len(files), summary.format()
        figure[name] = {"clips": len(files), "seconds": round(summary.seconds, 2)}
        figure[name]["clips_per_s"] = round(len(files) / summary.seconds, 2)
    figure["ray_over_plain"] = round(figure["predict_ray"]["clips_per_s"] / figure["predict"]["clips_per_s"], 3)
    return figure


def measure_serving(settings: Settings, classifier) -> dict:
    """The whole figure (see the module docstring)."""
    if settings.device.type != "cpu":
        return {"skipped": "serving measures the CPU: run it with --device cpu"}
    try:
        import ray
    except ImportError:
        return {"skipped": "needs the [ray] extra: pip install 'gemo-clap-hf[ray]'"}
    quick = settings.size == "tiny"
    clip_seconds, requests_total, num_clips = (1.0, 32, 96) if quick else (settings.clip_seconds, 48, 96)
    with tempfile.TemporaryDirectory(prefix="gemo_clap_serving_") as folder:
        model = Path(folder) / "model"
        classifier.to("cpu").save_pretrained(model)
        GEmoClapFeatureExtractor().save_pretrained(model)
        train_prompt_tokenizer(Path(folder) / "tokenizer").save_pretrained(model)  # the label prompts' tokenizer
        clips = Path(folder) / "clips"
        clips.mkdir()
        files = write_test_clips(clips, num_clips, clip_seconds, clip_seconds * 1.5, SAMPLING_RATE, settings.seed)
        bodies = [Path(f).read_bytes() for f in files]
        ray.init(num_cpus=CPUS, include_dashboard=False, log_to_driver=False)
        try:
            figure = {
                "size": settings.size,
                "cpus": CPUS,
                "clip_seconds": [clip_seconds, clip_seconds * 1.5],
                "endpoint": measure_endpoint(str(model), bodies, requests_total),
                "bulk": measure_bulk(str(model), files),
            }
        finally:
            ray.shutdown()
    batched, single = figure["endpoint"]["dynamic_batching"], figure["endpoint"]["no_batching"]
    figure["batching_speedup_16_clients"] = round(
        batched["16_clients"]["requests_per_s"] / single["16_clients"]["requests_per_s"], 2
    )
    return figure


__all__ = ["latency_summary", "load_test", "measure_serving"]
