"""Shared pytest configuration. Fixtures that start real servers live in tests/fixtures/ and are plugins here."""

import os

# Tests never touch the network: huggingface_hub (imported by transformers/peft) must stay offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

pytest_plugins = [
    "tests.fixtures.chain",
    "tests.fixtures.da",
    "tests.fixtures.models",
    "tests.fixtures.postgres",
]
