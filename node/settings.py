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
    block_time_s: int = Field(2, ge=0, description="anvil also mines a block this often, as an OP chain does (each "
                              "transaction is still mined at once), so posted batches become final without traffic; "
                              "0: blocks only for transactions.")
    demo_dir: Path = Field(Path(".demo"), description="Demo assets (assets.json) registered on `up` if present.")


class StoreSettings(BaseModel):
    """The durable attribution record log (SQLite, WAL)."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Field(Path(".loraledger/records.db"), description="SQLite file of the record log.")
    max_bytes: int = Field(8 * 2**30, gt=0, description="Disk bound: past it new records are refused, loudly.")
    min_free_bytes: int = Field(256 * 2**20, ge=0, description="Refuse new records when the disk has less free.")
    archive_dir: Path | None = Field(None, description="Where pruned batches' payloads go (default: kept in the db).")
    commit_delay_ms: float = Field(0.0, ge=0, le=1000, description="An answer's record waits this long for others "
                                   "to share its commit and fsync (default 0: commit at once).")


class BatcherSettings(BaseModel):
    """The batcher (inside `loraledger node run` by default, or `loraledger batcher run` beside it): when to seal,
    DA, confirmations, fees."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Run the batcher inside `loraledger node run` (false: run "
                          "`loraledger batcher run` beside the node; one batcher per store either way).")
    da_url: str = Field("http://127.0.0.1:3100", description="DA server or eigenda-proxy URL.")
    da_api_key: SecretStr | None = Field(None, description="Key the DA server wants for puts (its --api-key-hash); "
                                         "prefer env LORALEDGER_BATCHER__DA_API_KEY.")
    seal_interval_s: float = Field(10.0, gt=0, description="Seal whatever waits at least this often.")
    seal_min_records: int = Field(10_000, ge=1, description="Seal as soon as this many records wait.")
    max_batch_records: int | None = Field(None, ge=1, description="Default: the ledger's MAX_BATCH_RECORDS / 16 MiB.")
    confirmations: int = Field(2, ge=1, description="Blocks deep before a posted batch is final.")
    poll_interval_s: float = Field(1.0, gt=0, description="Pipeline pass interval.")
    resubmit_after_s: float = Field(20.0, gt=0, description="Replace a tx with bumped fees after this long.")
    retention_s: float | None = Field(None, ge=0, description="Prune records of final batches after this long.")
    tip_wei: int | None = Field(None, ge=0, description="Explicit priority fee (default: the node's suggestion).")
    fee_cap_multiple: float = Field(10.0, ge=1, description="Never pay a fee cap above this × the suggested one.")


class DisputesSettings(BaseModel):
    """The dispute responder inside `loraledger node run`: it answers every challenge against this node
    (docs/disputes.md "Node side")."""

    model_config = ConfigDict(extra="forbid")

    respond: bool = Field(True, description="Answer omission and availability challenges against this node "
                          "automatically (false: nobody answers for it, and an unanswered challenge slashes it).")
    poll_interval_s: float = Field(2.0, gt=0, description="How often BatchDisputes events are read.")
    confirmations: int = Field(2, ge=0, description="Blocks deep before the responder trusts a block (reorgs).")
    alarm_margin_s: int = Field(12 * 3600, ge=0, description="A challenge still unanswered this many (chain) "
                                "seconds before its deadline raises the alarm (log line, metric).")


class NodeSettings(BaseModel):
    """The HTTP server: address, keys (stored as sha256 hashes), limits, timeouts, shutdown, logs."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Listen address.")
    port: int = Field(8000, ge=0, le=65535, description="Listen port (0: pick a free one).")
    public_url: str | None = Field(None, description="Base URL clients reach the node at (for status_url); "
                                   "default: the request's own base URL.")
    api_key_hashes: list[str] = Field(default_factory=list, description="sha256 hex of each accepted API key "
                                      "(`loraledger node hash-key KEY`); empty: the inference routes are open.")
    admin_key_hash: str | None = Field(None, description="sha256 hex of the admin key for /v1/adapters; unset: "
                                       "admin routes are refused (403).")
    max_body_bytes: int = Field(1 << 20, gt=0, description="Largest request body; beyond it 413.")
    max_prompt_chars: int = Field(32_768, gt=0, description="Largest prompt (or all messages) in characters; 400.")
    request_timeout_s: float = Field(120.0, gt=0, description="A request still generating after this is cut "
                                     "(finish_reason \"length\"); its tokens are attributed.")
    requests_per_minute: int = Field(600, gt=0, description="Per API key; with keys off, per client address "
                                     "(IPv6 by /64), loopback clients exempt (docs/node.md \"Rate limits\").")
    tokens_per_minute: int = Field(200_000, gt=0, description="Per API key: prompt tokens + max_tokens.")
    shutdown_deadline_s: float = Field(30.0, ge=0, description="On SIGTERM/Ctrl-C: how long in-flight requests "
                                       "may finish before they are cut (their tokens are still attributed).")
    json_logs: bool = Field(False, description="Log one JSON object per line.")
    trusted_proxies: list[str] = Field(default_factory=list, description="Addresses of reverse proxies whose "
                                       "X-Forwarded-For is believed (default none: the socket's peer is the client).")
    header_timeout_s: float = Field(10.0, gt=0, description="A request's headers must arrive within this; 408.")
    body_timeout_s: float = Field(30.0, gt=0, description="A request's body must arrive within this; 408.")
    send_timeout_s: float = Field(60.0, gt=0, description="A client that reads nothing of its answer for this "
                                  "long is disconnected (a streamed answer is still recorded).")
    max_connections_per_client: int = Field(256, ge=1, description="Open connections from one address; "
                                            "beyond it 503.")
    attribution: bool = Field(True, description="Record and sign every answer (off only for benchmarks).")
    node_dev_index: int = Field(1, ge=0, le=9, description="On the devnet (chain 31337) only, without a "
                                "keystore: which anvil dev account is the node (1 = the bonded devnet node).")

    @model_validator(mode="after")
    def _hashes_are_sha256(self) -> NodeSettings:
        for h in [*self.api_key_hashes, *([self.admin_key_hash] if self.admin_key_hash else [])]:
            if len(h) != 64 or any(c not in "0123456789abcdef" for c in h.lower()):
                raise ValueError("api_key_hashes / admin_key_hash hold sha256 hex digests (64 hex chars), never "
                                 "keys: use `loraledger node hash-key KEY`")
        return self


class EngineSettings(BaseModel):
    """The base model and the engine's limits."""

    model_config = ConfigDict(extra="forbid")

    model_dir: Path = Field(Path(".demo/demo-llama"), description="Local Hugging Face model directory.")
    model_name: str | None = Field(None, description="The `model` name clients use for the base model "
                                   "(default: the directory name).")
    device: str = Field("cpu", description="cpu or cuda[:N].")
    dtype: str = Field("float32", pattern="^(float32|float16|bfloat16)$")
    max_batch: int = Field(32, gt=0, description="Rows decoded together.")
    max_queue: int = Field(256, ge=1, description="Requests waiting for a row; beyond it 429 with Retry-After.")
    max_seq_len: int = Field(512, gt=1, description="Prompt + completion tokens per request.")
    default_max_tokens: int = Field(64, gt=0, description="max_tokens when a request gives none.")
    threads: int | None = Field(None, ge=1, description="torch threads of the engine (intra- and inter-op), set "
                                "before it starts (default: the cores this process may use, minus one for HTTP, "
                                "recording and batching when there are more than two).")
    backend: str = Field("loraledger", pattern="^(loraledger|vllm|auto)$", description="The engine: loraledger "
                         "(ours, embedded), vllm (vLLM's AsyncLLM: `make setup-vllm`), or auto (vLLM where CUDA and "
                         "vllm are present, else ours).")
    tensor_parallel_size: int = Field(1, ge=1, description="vLLM only: GPUs one model is split across.")
    max_loras: int = Field(8, ge=1, description="vLLM only: adapters one batch can mix (LoRA slots on the device).")
    max_cpu_loras: int = Field(32, ge=1, description="vLLM only: adapters kept in host memory (>= max_loras).")
    max_lora_rank: int = Field(16, description="vLLM only: the largest adapter rank served; vLLM allows 1, 8, 16, "
                               "32, 64, 128, 256, 320 or 512.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="vLLM on CUDA only: share of GPU memory "
                                          "vLLM takes for weights, activations and K/V cache.")
    kv_cache_gib: float = Field(1.0, gt=0, description="vLLM on CPU only: GiB of host memory for the K/V cache.")

    @model_validator(mode="after")
    def _vllm_limits(self) -> EngineSettings:
        if self.max_lora_rank not in (1, 8, 16, 32, 64, 128, 256, 320, 512):
            raise ValueError(f"max_lora_rank {self.max_lora_rank} is not one vLLM allows: pick 1, 8, 16, 32, 64, 128, "
                             "256, 320 or 512")
        if self.max_cpu_loras < self.max_loras:
            raise ValueError(f"max_cpu_loras ({self.max_cpu_loras}) must be >= max_loras ({self.max_loras})")
        return self


class AdaptersSettings(BaseModel):
    """Which adapters the node serves and how it checks them against the AssetRegistry."""

    model_config = ConfigDict(extra="forbid")

    dirs: list[Path] = Field(default_factory=list, description="Adapter directories served at start (name = "
                             "directory name).")
    manifest: Path | None = Field(Path(".demo/manifest.json"), description="A demo manifest whose adapters are "
                                  "served too (skipped when the file is absent).")
    allowed_roots: list[Path] = Field(default_factory=list, description="POST /v1/adapters accepts directories "
                                      "under these roots only (default: the parents of `dirs` and the manifest).")
    require_registered: bool = Field(True, description="Refuse adapters the AssetRegistry does not list (active, "
                                     "same contentHash). Off only without a chain (benchmarks).")
    refresh_s: float = Field(30.0, gt=0, description="How often registry entries are re-read.")
    owners: list[str] = Field(default_factory=list, description="Owners whose registered adapters the node serves "
                              "by content hash alone: an adapter without an explicit id is looked up as "
                              "keccak256(owner, contentHash) for each (on the devnet, default: the demo owner).")
    host_bytes: int | None = Field(None, gt=0, description="Host-tier byte budget (None: unlimited).")
    device_bytes: int | None = Field(None, gt=0, description="Device-tier byte budget (None: unlimited).")
    store_dir: Path | None = Field(None, description="Where the engine keeps the read-only, content-addressed copies "
                                   "of the adapters it loads (default: `adapter-store` beside store.path).")


class Settings(BaseSettings):
    """All settings. Sections: `chain`, `devnet`, `store`, `batcher`, `disputes`, `node`, `engine`, `adapters`."""

    model_config = SettingsConfigDict(env_prefix="LORALEDGER_", env_nested_delimiter="__", extra="ignore",
                                      toml_file=DEFAULT_TOML)

    chain: ChainSettings = Field(default_factory=ChainSettings)  # type: ignore[arg-type]
    devnet: DevnetSettings = Field(default_factory=DevnetSettings)  # type: ignore[arg-type]
    store: StoreSettings = Field(default_factory=StoreSettings)  # type: ignore[arg-type]
    batcher: BatcherSettings = Field(default_factory=BatcherSettings)  # type: ignore[arg-type]
    disputes: DisputesSettings = Field(default_factory=DisputesSettings)  # type: ignore[arg-type]
    node: NodeSettings = Field(default_factory=NodeSettings)  # type: ignore[arg-type]
    engine: EngineSettings = Field(default_factory=EngineSettings)  # type: ignore[arg-type]
    adapters: AdaptersSettings = Field(default_factory=AdaptersSettings)  # type: ignore[arg-type]

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
    """Build `Settings` from `toml_file` (default `./loraledger.toml`, optional), the environment and overrides.

    A bad value raises `UsageError` naming the setting (`chain.rpc_url: Input should be a valid string`)."""
    import tomllib

    from pydantic import ValidationError

    from node.errors import UsageError

    try:
        if toml_file is None:
            return Settings(**overrides)
        path = Path(toml_file)

        class _FromFile(Settings):
            model_config = SettingsConfigDict(toml_file=path)

        return _FromFile(**overrides)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise UsageError(f"settings: {where}: {first['msg']} (check loraledger.toml and LORALEDGER_* "
                         "variables)") from e
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"loraledger.toml is not valid TOML: {e}") from e
