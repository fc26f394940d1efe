"""The matrix: presets, cells and threat settings, the runner and its crafting, pass counting."""
