"""Attacks that ART lacks, each an ART ``EvasionAttack`` (L-BFGS, batched CW-L2, the codeword CW-L2, margin PGD).

``ATTACKS`` maps the registry keys to the classes: ``cw_l2`` (C&W L2, by default on the raw outputs,
as a stock attacker would), ``cw_l2_codeword`` (saito2019 section 3.3) ``lbfgs`` (Szegedy et al.)
and ``pgd_margin`` (PGD on the decision margin, with restarts).
"""

from attacks_ext.cw import CarliniWagnerL2, CarliniWagnerL2Codeword
from attacks_ext.lbfgs import LBFGSAttack
from attacks_ext.margin_pgd import MarginPGD

ATTACKS = {
    "cw_l2": CarliniWagnerL2,
    "cw_l2_codeword": CarliniWagnerL2Codeword,
    "lbfgs": LBFGSAttack,
    "pgd_margin": MarginPGD,
}

__all__ = ["ATTACKS", "CarliniWagnerL2", "CarliniWagnerL2Codeword", "LBFGSAttack", "MarginPGD"]
