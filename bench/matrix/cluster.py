"""Where a distributed run's tasks run (``bench matrix --executor dask``): an existing Dask scheduler, a cluster of
processes on this machine (one per GPU on CUDA), or SLURM jobs through dask-jobqueue. Dask is imported only here
and in ``bench.matrix.dask_run``, when a run asks for it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from bench.errors import ConfigError


@dataclass(frozen=True)
class DaskSettings:
    """Where the tasks run: an existing scheduler's address, or a cluster started for the run."""

    scheduler: str | None = None  # tcp://host:8786
    cluster: str | None = None  # "local:N" or "slurm"
    slurm: dict[str, Any] = field(default_factory=dict)  # dask_jobqueue.SLURMCluster's options (queue, account, ...)
    jobs: int = 1  # SLURM jobs to ask for
    # True: workers read the model store and crafted examples from the driver's folders (one machine, or a cluster's
    # shared file system). False: each worker keeps its own in a private folder and the models travel through the
    # scheduler (cloud machines with no disk in common)
    shared_disk: bool = True

    def __post_init__(self) -> None:
        if (self.scheduler is None) == (self.cluster is None):
            raise ConfigError("--executor dask needs one of --scheduler tcp://host:port or --cluster local:N|slurm.")
        if self.cluster is not None:
            kind, _, count = self.cluster.partition(":")
            if kind not in ("local", "slurm") or (kind == "local" and count and not count.isdigit()):
                raise ConfigError(f"--cluster {self.cluster!r} is not understood; expected local, local:N or slurm.")
            if kind == "local" and count and int(count) < 1:
                raise ConfigError(f"--cluster {self.cluster!r} asks for no worker; expected local:N with N >= 1.")


def local_workers(settings: DaskSettings) -> int:
    count = settings.cluster.partition(":")[2] if settings.cluster else ""
    return int(count) if count else 1


def start_cluster(settings: DaskSettings, device: str):
    """The cluster for ``settings`` (None for an existing scheduler): local processes, one per GPU on CUDA with its
    ``CUDA_VISIBLE_DEVICES``, each with its share of this machine's cores; or SLURM jobs through dask-jobqueue."""
    if settings.scheduler:
        return None
    if settings.cluster == "slurm":
        from dask_jobqueue import SLURMCluster

        cluster = SLURMCluster(**settings.slurm)
        cluster.scale(jobs=settings.jobs)
        return cluster
    from distributed import Nanny, Scheduler, SpecCluster

    n = local_workers(settings)
    threads = max(1, (os.cpu_count() or 1) // n)
    workers = {}
    for i in range(n):
        env = {"OMP_NUM_THREADS": str(threads), "BENCH_TORCH_THREADS": str(threads)}
        if device.startswith("cuda"):
            env["CUDA_VISIBLE_DEVICES"] = str(i)  # one worker per GPU; each sees its own as cuda:0
        workers[f"bench-{i}"] = {"cls": Nanny, "options": {"nthreads": 1, "env": env, "silence_logs": logging.ERROR}}
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": ":0"}}
    return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=logging.ERROR)


def slurm_job_script(settings: DaskSettings) -> str:
    """The job script ``--cluster slurm`` would submit (``bench matrix --executor dask --dry-run`` prints it)."""
    from dask_jobqueue import SLURMCluster

    cluster = SLURMCluster(**settings.slurm, silence_logs="error")
    try:
        return cluster.job_script()
    finally:
        cluster.close()
