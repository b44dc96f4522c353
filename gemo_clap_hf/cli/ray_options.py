"""`gemo-clap predict --ray [ADDRESS] [--ray-workers N]`: the options that send the files to a Ray cluster."""

from __future__ import annotations

import argparse
import re

from ..errors import CommandError

LOCAL_CLUSTER = "local"  # `--ray` without an address: start a Ray cluster on this machine for the run
# "auto", HOST:PORT (the GCS of `ray start --head`, port 6379 by default) or ray://HOST:PORT (Ray Client).
_ADDRESS = re.compile(r"^(auto|(ray://)?[\w.-]+:\d+)$")


def add_ray_arguments(predict: argparse.ArgumentParser) -> None:
    group = predict.add_argument_group(
        "on a Ray cluster",
        "--ray scores the files on Ray Data actors (the [ray] extra) and streams the rows back to the same output: "
        "same rows, same resume, same failures. The files and the model must be readable on every node.",
    )
    group.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL_CLUSTER,
        default=None,
        metavar="ADDRESS",
        help="auto (the cluster this machine joined with `ray start`), HOST:PORT or ray://HOST:PORT; alone, a local "
        "cluster for this run. Put it after the paths, or write --ray=ADDRESS",
    )
    group.add_argument(
        "--ray-workers",
        type=int,
        default=None,
        metavar="N",
        help="model copies (Ray actors, --threads CPUs each; default: as many as the cluster's CPUs allow)",
    )


def check_ray_options(ray: str | None, device: str | None, plot: str | None, workers: int | None) -> None:
    """Usage errors of the --ray options, before anything loads."""
    if ray is None:
        if workers is not None:
            raise CommandError("--ray-workers only applies to --ray; add --ray.")
        return
    if ray != LOCAL_CLUSTER and not _ADDRESS.match(ray):
        raise CommandError(
            f"--ray {ray!r} is not a Ray address (auto, HOST:PORT or ray://HOST:PORT); if it is one of the paths, put "
            "--ray after the paths or write --ray=ADDRESS."
        )
    if workers is not None and workers < 1:
        raise CommandError(f"--ray-workers must be at least 1, got {workers}.")
    if device is not None:
        raise CommandError("--ray runs the model on the workers' CPUs; drop --device.")
    if plot is not None:
        raise CommandError("--plot draws one file's timeline: drop --ray for it.")


def ray_address(ray: str) -> str | None:
    """The address for `ray.init`: None starts a local cluster."""
    return None if ray == LOCAL_CLUSTER else ray


__all__ = ["LOCAL_CLUSTER", "add_ray_arguments", "check_ray_options", "ray_address"]
