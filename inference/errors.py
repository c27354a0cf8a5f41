"""Exceptions of the inference package: one root, `InferenceError`, with built-in mix-ins where they fit."""

import os


class InferenceError(Exception):
    """Root of every error raised by the inference package."""


def choice_from_env(env: str, choices: tuple[str, ...], what: str) -> str:
    """The value of the switch `env` (lower-cased, default ``auto``); one not in `choices` raises InferenceError
    naming it as `what` (e.g. "a kernel path") and listing the choices."""
    value = os.environ.get(env, "").strip().lower() or "auto"
    if value not in choices:
        raise InferenceError(f"{env}={value!r} is not {what}: use one of {', '.join(choices)} (or unset it for auto)")
    return value
