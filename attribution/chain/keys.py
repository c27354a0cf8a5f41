"""Signing keys: anvil's dev accounts (local devnet only), eth-account keystores, raw keys from the environment.

Never log a key or a password. Dev keys are anvil's well-known mnemonic accounts; they are refused for any chain
other than the local devnet (chain id 31337), because everyone knows them.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path
from typing import Literal

from eth_account import Account
from eth_account.signers.local import LocalAccount

from attribution.chain.errors import DevKeyRefused, SignerError

log = logging.getLogger(__name__)

DEVNET_CHAIN_ID = 31337
#: anvil's default mnemonic (public; devnet only).
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNT_COUNT = 10

ENV_PRIVATE_KEY = "LORALEDGER_PRIVATE_KEY"
ENV_KEYSTORE_PASSWORD = "LORALEDGER_KEYSTORE_PASSWORD"

# Devnet roles: index into the dev accounts (documented in docs/chain.md).
DEV_ROLE_INDEX: dict[str, int] = {
    "deployer": 0,
    "governance": 0,
    "node": 1,
    "rewards_poster": 2,
    "guardian": 3,
    "treasury": 4,
}


@functools.cache
def dev_keys(count: int = DEV_ACCOUNT_COUNT) -> tuple[str, ...]:
    """anvil's dev private keys (`0x` hex), derived from its mnemonic at m/44'/60'/0'/0/i."""
    Account.enable_unaudited_hdwallet_features()
    return tuple(
        "0x" + bytes(Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key).hex()
        for i in range(count)
    )


@functools.cache
def _dev_addresses() -> frozenset[str]:
    return frozenset(Account.from_key(k).address.lower() for k in dev_keys())


def is_dev_address(address: str) -> bool:
    """True when `address` belongs to one of anvil's dev accounts."""
    return address.lower() in _dev_addresses()


def check_key_allowed(account: LocalAccount, chain_id: int) -> None:
    """Refuse anvil dev keys outside the local devnet (chain id 31337)."""
    if chain_id != DEVNET_CHAIN_ID and is_dev_address(account.address):
        raise DevKeyRefused(
            f"refusing anvil's public dev key {account.address} on chain {chain_id}: dev keys are for the local "
            f"devnet (chain id {DEVNET_CHAIN_ID}) only; use --keystore FILE (password in {ENV_KEYSTORE_PASSWORD}) "
            f"or {ENV_PRIVATE_KEY}")


def account_from_key(private_key: str) -> LocalAccount:
    """A local account from a hex private key (error message never contains the key)."""
    try:
        return Account.from_key(private_key.strip())
    except (ValueError, TypeError) as e:
        raise SignerError("the private key is not 32 bytes of hex; check the value (it is not shown here)") from e


def account_from_keystore(path: Path | str, password: str, *,
                          password_env: str = ENV_KEYSTORE_PASSWORD) -> LocalAccount:
    """Decrypt an eth-account keyfile JSON (`Account.encrypt` / geth format); errors name `password_env`."""
    path = Path(path)
    try:
        keyfile = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SignerError(f"cannot read keystore {path}: {e}; pass an eth-account keyfile JSON") from e
    try:
        key = Account.decrypt(keyfile, password)
    except (ValueError, KeyError, TypeError) as e:
        raise SignerError(f"cannot decrypt keystore {path}: wrong password or not a keyfile (set "
                          f"{password_env} to the right password)") from e
    return Account.from_key(key)


def write_keystore(path: Path | str, private_key: str, password: str, *, kdf: Literal["scrypt", "pbkdf2"] = "scrypt",
                   iterations: int | None = None) -> Path:
    """Encrypt a key into an eth-account keyfile JSON with mode 0600 (scrypt by default; tests pass a cheap
    `kdf="pbkdf2", iterations=...`)."""
    path = Path(path)
    keyfile = Account.encrypt(account_from_key(private_key).key, password, kdf=kdf, iterations=iterations)
    try:
        write_secret_file(path, json.dumps(keyfile).encode())
    except FileExistsError as e:
        raise SignerError(f"{path} already exists: a keystore is never overwritten (it may hold the only copy of "
                          "a key); pick another path or move the old file away") from e
    return path


def write_secret_file(path: Path, data: bytes) -> None:
    """Create `path` holding `data`, readable by its owner only (0600), durably; `FileExistsError` if it exists.

    `O_EXCL` on a fresh temp file: `O_CREAT` on an existing file keeps that file's mode (0644), so the secret
    would be world-readable. The temp file is renamed into place only if `path` is still absent (a hard link
    fails on an existing name), so no existing key is ever replaced.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_signer(chain_id: int, *, keystore: Path | str | None = None, password: str | None = None,
                private_key: str | None = None, dev_index: int | None = None) -> LocalAccount:
    """The signing account, in order: keystore (+ password or env), explicit/env private key, dev account.

    `dev_index` selects an anvil dev account and is accepted only on chain 31337. Every source is checked with
    `check_key_allowed`, so a dev key pasted into `LORALEDGER_PRIVATE_KEY` is refused on a real chain too.
    """
    account: LocalAccount
    if keystore is not None:
        pw = password if password is not None else os.environ.get(ENV_KEYSTORE_PASSWORD)
        if pw is None:
            raise SignerError(f"keystore {keystore} needs a password: set {ENV_KEYSTORE_PASSWORD}")
        account = account_from_keystore(keystore, pw)
    elif private_key is not None or os.environ.get(ENV_PRIVATE_KEY):
        account = account_from_key(private_key if private_key is not None else os.environ[ENV_PRIVATE_KEY])
    elif dev_index is not None:
        if chain_id != DEVNET_CHAIN_ID:
            raise DevKeyRefused(f"dev accounts exist only on the local devnet (chain id {DEVNET_CHAIN_ID}), "
                                f"not chain {chain_id}; pass --keystore FILE or set {ENV_PRIVATE_KEY}")
        account = Account.from_key(dev_keys()[dev_index])
    else:
        raise SignerError(f"no signing key: pass --keystore FILE (password in {ENV_KEYSTORE_PASSWORD}) or set "
                          f"{ENV_PRIVATE_KEY}")
    check_key_allowed(account, chain_id)
    log.debug("signer %s loaded for chain %d", account.address, chain_id)
    return account
