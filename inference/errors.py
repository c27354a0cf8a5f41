"""Exceptions of the inference package: one root, `InferenceError`, with built-in mix-ins where they fit."""


class InferenceError(Exception):
    """Root of every error raised by the inference package."""
