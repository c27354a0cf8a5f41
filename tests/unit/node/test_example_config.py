"""The shipped example configuration stays loadable and in step with `Settings`."""

from pathlib import Path

from node.settings import load_settings

EXAMPLE = Path(__file__).resolve().parents[3] / "loraledger.example.toml"


def test_example_config_loads_every_section() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.chain.rpc_url == "http://127.0.0.1:8545"
    assert settings.devnet.da_port == 3100
    assert settings.store.path == Path(".loraledger/records.db")
    assert settings.store.max_bytes == 8 * 2**30


def test_environment_overrides_the_file(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LORALEDGER_STORE__MAX_BYTES", "1024")
    assert load_settings(EXAMPLE).store.max_bytes == 1024


def test_example_config_node_sections() -> None:
    settings = load_settings(EXAMPLE)
    assert (settings.node.port, settings.engine.max_queue, settings.adapters.require_registered) == (8000, 256, True)
    assert settings.engine.model_dir == Path(".demo/demo-llama")
