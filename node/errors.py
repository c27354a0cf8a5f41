"""Exceptions of the node package: one root, `NodeError`."""


class NodeError(Exception):
    """Root of every error raised by the node package."""


class UsageError(NodeError, ValueError):
    """Bad command-line or configuration input; the CLI prints the message and exits with code 2."""
