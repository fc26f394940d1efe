"""Analyses of trained networks that go beyond attack success rates."""
