"""The loraledger node: settings, CLI, HTTP API; wires `inference` and `attribution` together."""

from node.errors import NodeError

__all__ = ["NodeError"]
