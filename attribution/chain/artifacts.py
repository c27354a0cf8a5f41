"""Forge build artifacts: load a contract's ABI and bytecode from `out/`, hash ABIs, rebuild when stale.

Forge writes one JSON per contract at `out/<File>.sol/<Name>.json`. We read `abi`, `bytecode.object` and
`deployedBytecode.object`; nothing else of the artifact format is relied upon.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attribution.chain.errors import ArtifactError, ToolNotFound
from attribution.hashing import keccak256

log = logging.getLogger(__name__)

# The repository root: attribution/chain/artifacts.py -> ../../..
REPO_ROOT = Path(__file__).resolve().parents[2]

#: The contracts `deploy_all` needs (forge artifact names).
CORE_CONTRACTS: tuple[str, ...] = (
    "DevToken",
    "AssetRegistry",
    "NodeRegistry",
    "AttributionLedger",
    "RewardDistributor",
)
#: Deployed on real chains only: the GovernanceTimelock (OZ's TimelockController with a delay floor and the guardian
#: as canceller, contracts/src/GovernanceTimelock.sol) governs every contract.
TIMELOCK_CONTRACT = "GovernanceTimelock"
#: The dispute games (docs/disputes.md), deployed with the core and made the NodeRegistry's only slasher; its errors
#: are triggered by selector in contracts/test/BatchDisputes*.t.sol.
DISPUTES_CONTRACT = "BatchDisputes"


def abi_hash(abi: Sequence[dict[str, Any]]) -> str:
    """`0x` + keccak256 of the ABI as canonical JSON (sorted keys, no whitespace): changes iff the ABI does."""
    canonical = json.dumps(list(abi), sort_keys=True, separators=(",", ":")).encode()
    return "0x" + keccak256(canonical).hex()


@dataclass(frozen=True)
class Artifact:
    """One compiled contract: its name, ABI and creation/runtime bytecode (hex strings with `0x`)."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    path: Path = field(compare=False)

    @property
    def abi_hash(self) -> str:
        """keccak256 of the canonical ABI JSON (see `abi_hash`)."""
        return abi_hash(self.abi)

    @property
    def deployable(self) -> bool:
        """False for interfaces and abstract contracts (empty creation code)."""
        return len(self.bytecode) > 2

    def errors(self) -> list[dict[str, Any]]:
        """The ABI's custom-error entries."""
        return [item for item in self.abi if item.get("type") == "error"]


def find_foundry_tool(tool: str, repo_root: Path = REPO_ROOT) -> Path:
    """Locate `anvil`/`forge`/`cast`: the npm copy under node_modules first, then PATH."""
    local = repo_root / "node_modules" / "@foundry-rs" / f"{tool}-linux-amd64" / "bin" / tool
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which(tool)
    if found:
        return Path(found)
    raise ToolNotFound(f"{tool} not found (looked in {local} and on PATH); run `make setup` to install the pinned "
                       "Foundry binaries from npm")


def _read_artifact(path: Path, name: str) -> Artifact:
    try:
        raw = json.loads(path.read_text())
        bytecode = raw["bytecode"]["object"]
        deployed = raw["deployedBytecode"]["object"]
        abi = raw["abi"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ArtifactError(f"unreadable forge artifact {path}: {e}; run `forge build` (or `make build`)") from e
    if not bytecode.startswith("0x"):
        bytecode = "0x" + bytecode
    if not deployed.startswith("0x"):
        deployed = "0x" + deployed
    return Artifact(name=name, abi=abi, bytecode=bytecode, deployed_bytecode=deployed, path=path)


class ArtifactStore:
    """Reads (and caches) forge artifacts from one `out/` directory."""

    def __init__(self, out_dir: Path | str | None = None) -> None:
        self.out_dir = Path(out_dir) if out_dir is not None else REPO_ROOT / "out"
        self._cache: dict[str, Artifact] = {}

    def path_of(self, name: str) -> Path:
        """The artifact file for contract `name` (`out/<name>.sol/<name>.json`, else the only `*/<name>.json`)."""
        preferred = self.out_dir / f"{name}.sol" / f"{name}.json"
        if preferred.is_file():
            return preferred
        candidates = sorted(p for p in self.out_dir.glob(f"*/{name}.json") if not p.parent.name.endswith(".t.sol"))
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise ArtifactError(f"no forge artifact for contract {name!r} under {self.out_dir}; run `forge build` "
                                "(or `make build`)")
        raise ArtifactError(f"contract name {name!r} is ambiguous under {self.out_dir}: "
                            f"{', '.join(str(c) for c in candidates)}")

    def load(self, name: str) -> Artifact:
        """Load contract `name`'s artifact (cached)."""
        if name not in self._cache:
            self._cache[name] = _read_artifact(self.path_of(name), name)
        return self._cache[name]

    def all(self, include_tests: bool = False) -> list[Artifact]:
        """Every artifact under `out/` (skipping forge test/script files unless `include_tests`)."""
        result = []
        for path in sorted(self.out_dir.glob("*/*.json")):
            if path.parent.name == "build-info":
                continue
            if not include_tests and path.parent.name.endswith((".t.sol", ".s.sol")):
                continue
            result.append(_read_artifact(path, path.stem))
        return result

    def abis(self, names: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """The ABIs of the named contracts."""
        return {name: self.load(name).abi for name in names}


def _newest_mtime(paths: Iterable[Path]) -> float:
    return max((p.stat().st_mtime for p in paths), default=0.0)


def is_stale(repo_root: Path, names: Iterable[str]) -> bool:
    """True when an artifact of `names` is missing or a `.sol` under `contracts/src|interfaces` changed after the
    last forge build (forge rewrites its cache file on every build, but only the artifacts that changed)."""
    store = ArtifactStore(repo_root / "out")
    try:
        artifact_paths = [store.path_of(n) for n in names]
    except ArtifactError:
        return True
    sources = [repo_root / "contracts" / "src", repo_root / "contracts" / "interfaces"]
    newest_source = _newest_mtime(p for src in sources if src.is_dir() for p in src.rglob("*.sol"))
    cache_file = repo_root / "cache" / "forge" / "solidity-files-cache.json"
    built_at = cache_file.stat().st_mtime if cache_file.is_file() else min(p.stat().st_mtime for p in artifact_paths)
    return built_at < newest_source


def ensure_built(repo_root: Path = REPO_ROOT,
                 names: Iterable[str] = (*CORE_CONTRACTS, TIMELOCK_CONTRACT, DISPUTES_CONTRACT),
                 timeout_s: float = 600) -> None:
    """`forge build contracts/src` when an artifact of `names` is missing or stale (forge caches; the forge tests
    are not compiled, so a broken test file does not block deployment)."""
    names = list(names)
    if not is_stale(repo_root, names):
        return
    forge = find_foundry_tool("forge", repo_root)
    log.info("forge build contracts/src (artifacts missing or stale)")
    try:
        proc = subprocess.run([str(forge), "build", "contracts/src"], cwd=repo_root, capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as e:
        raise ArtifactError(f"forge build took longer than {timeout_s:.0f}s; run it by hand to see why") from e
    if proc.returncode != 0:
        raise ArtifactError(f"forge build failed (exit {proc.returncode}); fix the contracts and rerun:\n"
                            f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    store = ArtifactStore(repo_root / "out")
    for name in names:
        store.path_of(name)  # raises if the build did not produce it
