"""The papers' published numbers (bench/data/reference_results.csv) and how our cells map onto them."""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

from models.seeds import kind_label

VU2018_LOSS = {"O:SOFTMAX:CE": "cross_entropy", "hinge": "hinge"}


@dataclass(frozen=True)
class RefKey:
    source: str
    table: str
    setting: str  # the CSV's setting: whitebox_untargeted, transfer_from:<model>, tailored_targeted, clean
    dataset: str
    model: str
    attack: str
    param: str
    value: float | None


@functools.cache
def reference() -> dict[RefKey, float | None]:
    text = resources.files("bench.data").joinpath("reference_results.csv").read_text()
    out: dict[RefKey, float | None] = {}
    for row in csv.DictReader(text.splitlines()):
        value = float(row["value"]) if row["value"] else None
        key = RefKey(
            row["source"],
            row["table"],
            row["setting"],
            row["dataset"],
            row["model"],
            row["attack"],
            row["param"],
            value,
        )
        out[key] = float(row["result"]) if row["result"] else None
    return out


def vu2018_model(label: str, arch: str, adversarial: bool) -> str:
    """Our model label as vu2018's rows name it: cnn:cross_entropy, cnn+pgd_at:lmcl_s10_m0.3."""
    loss = VU2018_LOSS.get(label, label)
    return f"{arch}{'+pgd_at' if adversarial else ''}:{loss}"


def csv_setting(setting: str, source: str | None) -> str:
    if setting == "transfer":
        return f"transfer_from:{source}"
    if setting == "tailored":
        return "tailored_targeted"
    return setting


def lookup(
    table: str,
    setting: str,
    dataset: str,
    model: str,
    attack: str,
    param: str,
    value: float | None,
    source: str | None = None,
    arch: str = "cnn",
) -> float | None:
    """The published number for one of our cells, or None where the papers have none (a training seed's model,
    ``O:SOFTMAX:CE@s1``, is looked up as its model: the papers trained each once; a model named by its recipe,
    ``O:SOFTMAX:CE+fgsm_rs_at``, as its kind)."""
    model = kind_label(model)
    source = kind_label(source) if source else source
    src, _, tab = table.partition(":")
    if src == "vu2018":
        model = vu2018_model(model, arch, adversarial=False)
        if source:
            source = vu2018_model(source, arch, adversarial=False)
    key = RefKey(src, tab, csv_setting(setting, source), dataset, model, attack, param, value)
    return reference().get(key)


def published(record, arch: str) -> float | None:
    """The published number for a stored cell (a Record) under the first of its tables that has one."""
    for table in record.config.get("tables", []):
        paper = lookup(
            table,
            record.setting,
            record.dataset,
            record.model,
            record.attack,
            record.param or "",
            record.value,
            record.source,
            arch,
        )
        if paper is not None:
            return paper
    return None
