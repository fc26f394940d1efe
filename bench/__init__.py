"""bench: the reference harness for loss functions, target representations and adversarial robustness.

The public API (``bench.api``), loaded on first use so that ``import bench`` stays light:
``run_matrix``, ``plan_matrix``, ``estimate_matrix``, ``evaluate``, ``load_results``, ``train``, ``report``,
``baseline``, ``check``, and the analyses ``lipschitz``, ``inside``, ``pictures``, ``compare_art``.
"""

__version__ = "0.1.0"

API = (
    "run_matrix",
    "plan_matrix",
    "estimate_matrix",
    "evaluate",
    "load_results",
    "train",
    "report",
    "baseline",
    "check",
    "lipschitz",
    "inside",
    "pictures",
    "compare_art",
    "MatrixRun",
)
__all__ = [*API, "__version__"]


def __getattr__(name: str):
    if name in API:
        from bench import api

        return getattr(api, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
