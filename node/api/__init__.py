"""The node's HTTP API: one router per resource, errors mapped in one place."""
