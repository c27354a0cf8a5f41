"""LoRA adapters: sources (a directory, a catalogue), content ids, validation into tensors, and the tiered cache.

Kept import-light on purpose: import the submodules (`inference.adapters.weights`, `.source`, `.identity`,
`.errors`, `.cache`) directly.
"""
