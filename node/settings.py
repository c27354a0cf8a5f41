"""Node settings: one pydantic-settings `Settings` with nested sections, from `loraledger.toml` and the environment.

Precedence: explicit arguments > environment (`LORALEDGER_` prefix, `__` nesting: `LORALEDGER_CHAIN__RPC_URL`)
> `loraledger.toml` (tables `[chain]`, `[devnet]`, ...) > defaults. No module-level instance: call
`load_settings()` where settings are needed (the CLI does it per command).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

DEFAULT_TOML = Path("loraledger.toml")
DEVNET_CHAIN_ID = 31337


class ChainSettings(BaseModel):
    """Which L2 and deployment to use, and the signing key (keystore or raw key; never logged)."""

    model_config = ConfigDict(extra="forbid")

    rpc_url: str = Field("http://127.0.0.1:8545", description="JSON-RPC URL of the OP-Stack L2 (or the devnet).")
    chain_id: int | None = Field(None, description="Expected chain id; checked against the RPC when set.")
    deployment_file: Path | None = Field(None, description="Default: deployments/<chainId>.json.")
    deployments_dir: Path = Field(Path("deployments"), description="Where deployments/<chainId>.json live.")
    keystore: Path | None = Field(None, description="eth-account keyfile JSON of the signer.")
    keystore_password: SecretStr | None = Field(
        None, description="Keystore password (prefer env LORALEDGER_KEYSTORE_PASSWORD or the prompt).")
    private_key: SecretStr | None = Field(None, description="Raw signer key (prefer a keystore outside the devnet).")

    @model_validator(mode="after")
    def _refuse_dev_keys_outside_devnet(self) -> ChainSettings:
        if self.private_key is None or self.chain_id is None or self.chain_id == DEVNET_CHAIN_ID:
            return self
        from attribution.chain.keys import dev_keys

        if self.private_key.get_secret_value().strip().lower().removeprefix("0x") in {
                k.removeprefix("0x") for k in dev_keys()}:
            raise ValueError(f"chain.private_key is one of anvil's public dev keys, refused for chain {self.chain_id} "
                             f"(allowed only on the local devnet, chain id {DEVNET_CHAIN_ID}); use a keystore")
        return self

    def deployment_path(self, chain_id: int) -> Path:
        """The deployment file for `chain_id`."""
        return self.deployment_file or self.deployments_dir / f"{chain_id}.json"


class DevnetSettings(BaseModel):
    """The local devnet (`loraledger devnet up`): anvil + DA server, state under `state_dir`."""

    model_config = ConfigDict(extra="forbid")

    state_dir: Path = Field(Path(".devnet"), description="anvil state, pid and log files, DA data.")
    host: str = "127.0.0.1"
    anvil_port: int = Field(8545, ge=1, le=65535)
    da_port: int = Field(3100, ge=1, le=65535)
    start_da: bool = Field(True, description="Also start the DA server (`loraledger da serve`).")
    demo_dir: Path = Field(Path(".demo"), description="Demo assets (assets.json) registered on `up` if present.")


class StoreSettings(BaseModel):
    """The durable attribution record log (SQLite, WAL)."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Field(Path(".loraledger/records.db"), description="SQLite file of the record log.")
    max_bytes: int = Field(8 * 2**30, gt=0, description="Disk bound: past it new records are refused, loudly.")


class Settings(BaseSettings):
    """All settings. Sections: `chain`, `devnet`, `store`; other parts add theirs here."""

    model_config = SettingsConfigDict(env_prefix="LORALEDGER_", env_nested_delimiter="__", extra="ignore",
                                      toml_file=DEFAULT_TOML)

    chain: ChainSettings = Field(default_factory=ChainSettings)  # type: ignore[arg-type]
    devnet: DevnetSettings = Field(default_factory=DevnetSettings)  # type: ignore[arg-type]
    store: StoreSettings = Field(default_factory=StoreSettings)  # type: ignore[arg-type]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments > environment > TOML file."""
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)


def load_settings(toml_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build `Settings` from `toml_file` (default `./loraledger.toml`, optional), the environment and overrides."""
    if toml_file is None:
        return Settings(**overrides)
    path = Path(toml_file)

    class _FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    return _FromFile(**overrides)
