"""Results: the store, metrics, gradient health, the worst case, flags, the gate, the frame."""
