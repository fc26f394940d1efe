"""Attacks that ART lacks, each an ART ``EvasionAttack`` (L-BFGS, batched CW-L2, the codeword CW-L2)."""
