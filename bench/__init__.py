"""bench: the reference harness for loss functions, target representations and adversarial robustness."""

__version__ = "0.1.0"
