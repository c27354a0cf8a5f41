"""The DA operator key: loads it from an encrypted keystore or creates a dev key; signs and checks certificates.

Certificates are signed as a raw secp256k1 signature over `Certificate.signing_digest()` (no EIP-191 prefix),
65 bytes `r ‖ s ‖ v` with `v` in {27, 28}, so a contract can check them with `ecrecover(digest, v, r, s)`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys import keys
from eth_keys.exceptions import BadSignature, ValidationError
from eth_typing import Hash32

from attribution.chain.errors import SignerError
from attribution.chain.keys import account_from_keystore, write_secret_file
from attribution.da.codec import Certificate
from attribution.da.errors import DAOperatorKeyError, DAPayloadMismatch

logger = logging.getLogger(__name__)

PASSWORD_ENV = "LORALEDGER_DA__OPERATOR_PASSWORD"
DEV_KEY_FILE = "operator-dev.key"


def load_operator(keystore: Path | None, data_dir: Path) -> LocalAccount:
    """The operator account: from `keystore` (password in $LORALEDGER_DA__OPERATOR_PASSWORD) or the dev key.

    Without a keystore a dev key is created in `data_dir/operator-dev.key` (mode 0600) on first start and reused
    afterwards; it is for local devnets only.
    """
    if keystore is not None:
        return _load_keystore(keystore)
    return _load_or_create_dev_key(data_dir)


def _load_keystore(keystore: Path) -> LocalAccount:
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        raise DAOperatorKeyError(f"set {PASSWORD_ENV} to the password of the operator keystore {keystore}")
    try:
        account = account_from_keystore(keystore, password, password_env=PASSWORD_ENV)
    except SignerError as e:
        raise DAOperatorKeyError(f"DA operator {e}") from e
    logger.info("DA operator %s loaded from keystore", account.address)
    return account


def _load_or_create_dev_key(data_dir: Path) -> LocalAccount:
    path = data_dir / DEV_KEY_FILE
    if path.exists():
        try:
            account: LocalAccount = Account.from_key(path.read_text().strip())
        except (OSError, ValueError) as e:
            raise DAOperatorKeyError(f"dev operator key {path} is unreadable; delete it to create a new one") from e
        logger.info("DA operator %s (dev key from %s)", account.address, path)
        return account
    data_dir.mkdir(parents=True, exist_ok=True)
    account = Account.create()
    try:
        write_secret_file(path, account.key.hex().encode())  # 0600, O_EXCL: never an old file's mode
    except FileExistsError:  # another server on this dir created it first: use that one
        return _load_or_create_dev_key(data_dir)
    logger.warning(
        "created dev DA operator key %s in %s; use --operator-keystore outside a devnet", account.address, path
    )
    return account


def sign_certificate(certificate: Certificate, account: LocalAccount) -> Certificate:
    """Sign the certificate's digest with the operator key (raw digest signature, not EIP-191)."""
    signed = account.unsafe_sign_hash(Hash32(certificate.signing_digest()))
    return certificate.with_signature(bytes(signed.signature))


def recover_signer(certificate: Certificate) -> str:
    """The checksummed address that signed the certificate; raise `DAPayloadMismatch` when it cannot be recovered."""
    sig = certificate.operator_signature
    if len(sig) != 65 or sig[64] not in (27, 28):
        raise DAPayloadMismatch("certificate signature is not 65 bytes r‖s‖v with v in {27, 28}")
    try:
        signature = keys.Signature(sig[:64] + bytes([sig[64] - 27]))
        public_key = signature.recover_public_key_from_msg_hash(certificate.signing_digest())
    except (BadSignature, ValidationError) as e:
        raise DAPayloadMismatch(f"certificate signature does not recover: {e}") from e
    return str(public_key.to_checksum_address())
