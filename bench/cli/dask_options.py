"""The options that run `bench matrix` (and `bench evaluate`) on Dask, and the settings they make."""

from __future__ import annotations

from collections.abc import Callable

import click

from bench.errors import ConfigError

DASK_HELP = """
\b
On Dask (the same records as a serial run; a craft group is one task):
  bench matrix --dataset mnist --executor dask --cluster local:2          # 2 worker processes here (1 per GPU on cuda)
  bench matrix --dataset mnist --executor dask --scheduler tcp://host:8786  # a cluster you started
  bench matrix --dataset mnist --executor dask --cluster slurm --slurm-queue gpu --slurm-walltime 04:00:00 \\
      --slurm-jobs 8 --slurm-gpus 1 --dry-run                              # prints the job script it would submit
"""

_OPTIONS = [
    click.option(
        "--executor",
        type=click.Choice(["serial", "dask"]),
        default="serial",
        show_default=True,
        help="serial: the groups in turn, here; dask: each craft group a Dask task.",
    ),
    click.option("--scheduler", default=None, help="With --executor dask: a running scheduler, tcp://host:8786."),
    click.option("--cluster", default=None, help="With --executor dask: local:N (processes here) or slurm."),
    click.option(
        "--shared-disk/--no-shared-disk",
        default=True,
        show_default=True,
        help="Whether workers see this machine's BENCH_HOME and --out; without, models travel through the scheduler.",
    ),
    click.option("--slurm-queue", default=None, help="SLURM partition."),
    click.option("--slurm-account", default=None, help="SLURM account."),
    click.option("--slurm-walltime", default="02:00:00", show_default=True, help="Per job."),
    click.option(
        "--slurm-jobs", type=click.IntRange(1), default=1, show_default=True, help="Jobs (workers) to ask for."
    ),
    click.option("--slurm-cores", type=click.IntRange(1), default=4, show_default=True, help="Cores per job."),
    click.option("--slurm-memory", default="16GB", show_default=True, help="Memory per job."),
    click.option("--slurm-gpus", type=click.IntRange(0), default=0, show_default=True, help="GPUs per job."),
]


def dask_options(command: Callable) -> Callable:
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def dask_settings(executor: str, scheduler, cluster, shared_disk: bool, **slurm_args):
    """The ``DaskSettings`` the options ask for, or None for the serial executor."""
    from bench.matrix.cluster import DaskSettings

    if executor == "serial":
        if scheduler or cluster:
            raise ConfigError("--scheduler and --cluster run on Dask: add --executor dask.")
        return None
    cores = slurm_args["slurm_cores"]
    slurm = {
        "queue": slurm_args["slurm_queue"],
        "account": slurm_args["slurm_account"],
        "walltime": slurm_args["slurm_walltime"],
        "cores": cores,
        "processes": 1,
        "memory": slurm_args["slurm_memory"],
        # one task at a time per job, with all its cores for torch: groups are large, and threads would fight
        "worker_extra_args": ["--nthreads", "1"],
        "job_script_prologue": [f"export BENCH_TORCH_THREADS={cores} OMP_NUM_THREADS={cores}"],
    }
    if slurm_args["slurm_gpus"]:
        slurm["job_extra_directives"] = [f"--gres=gpu:{slurm_args['slurm_gpus']}"]
    jobs = slurm_args["slurm_jobs"]
    return DaskSettings(scheduler=scheduler, cluster=cluster, slurm=slurm, jobs=jobs, shared_disk=shared_disk)
