"""Shared pytest configuration. Fixtures that start real servers live in tests/fixtures/ and are plugins here."""

pytest_plugins = [
    "tests.fixtures.chain",
    "tests.fixtures.da",
    "tests.fixtures.models",
]
