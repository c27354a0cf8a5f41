"""Exceptions of the attribution package: one root, `AttributionError`, with built-in mix-ins where they fit."""


class AttributionError(Exception):
    """Root of every error raised by the attribution package."""
