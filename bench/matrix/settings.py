"""Threat settings: what a cell measures (accuracy or a targeted attack's success), one registry entry each."""

from __future__ import annotations

from bench.registry import Registry
from bench.results import diagnostics

SETTINGS = Registry[str]("threat setting")
SETTINGS.register("whitebox_untargeted", "accuracy on white-box untargeted adversarial examples")
SETTINGS.register("whitebox_targeted", "success rate of a white-box targeted attack (random target per image)")
SETTINGS.register("transfer", "accuracy on untargeted examples crafted on another model (black-box)")
SETTINGS.register("tailored", "success rate of targeted stock CW-L2 against the codeword CW-L2 (saito2019 Table 7)")
SETTINGS.register(diagnostics.SETTING, "gradient health of each model: zero, vanishing gradients and saturated outputs")
TARGETED_SETTINGS = ("whitebox_targeted", "tailored")
