"""Node receipts and the bytes an answer's `ioHash` covers (DESIGN.md, "Node HTTP API").

- `receipt` = the node's EIP-712 signature over
  `Receipt(uint256 chainId, address ledger, address node, uint64 seq, bytes32 leaf)`, domain
  `{name: "loraledger", version: "1", chainId, verifyingContract: ledger}`: the client's evidence in a dispute.
- `ioHash = keccak256(salt ‖ promptBytes ‖ completionBytes)`; for completions `promptBytes` is the prompt's UTF-8,
  for chat it is the UTF-8 of the request's `messages` as canonical JSON (`canonical_json`), so a client can
  recompute it without knowing the chat template.

The node signs with `sign_receipt`; clients and verifiers check with `recover_receipt_signer`.
"""

from __future__ import annotations

import json
from typing import Any

import coincurve
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data

from attribution.errors import AttributionError
from attribution.hashing import keccak256, to_checksum_address
from attribution.records import Record

__all__ = [
    "RECEIPT_DOMAIN_NAME",
    "RECEIPT_DOMAIN_VERSION",
    "ReceiptError",
    "canonical_json",
    "prompt_bytes",
    "receipt_message",
    "ReceiptSigner",
    "sign_receipt",
    "recover_receipt_signer",
]

RECEIPT_DOMAIN_NAME = "loraledger"
RECEIPT_DOMAIN_VERSION = "1"

_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Receipt": [
        {"name": "chainId", "type": "uint256"},
        {"name": "ledger", "type": "address"},
        {"name": "node", "type": "address"},
        {"name": "seq", "type": "uint64"},
        {"name": "leaf", "type": "bytes32"},
    ],
}


class ReceiptError(AttributionError, ValueError):
    """A receipt or the prompt it covers cannot be built or read (bad signature bytes, bad messages)."""


def canonical_json(obj: Any) -> bytes:
    """UTF-8 of `obj` as canonical JSON: sorted keys, no whitespace, non-ASCII kept as UTF-8 (not `\\u` escapes)."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise ReceiptError(f"cannot write canonical JSON: {e}; pass plain JSON values") from e


def prompt_bytes(*, prompt: str | None = None, messages: list[Any] | None = None) -> bytes:
    """The `promptBytes` of `ioHash`: a completion's prompt as UTF-8, or a chat's `messages` as canonical JSON."""
    if (prompt is None) == (messages is None):
        raise ReceiptError("pass exactly one of prompt (completions) or messages (chat completions)")
    if prompt is not None:
        return prompt.encode()
    if not isinstance(messages, list):
        raise ReceiptError(f"messages must be a JSON list, got {type(messages).__name__}")
    return canonical_json(messages)


def receipt_message(chain_id: int, ledger: bytes | str, node: bytes | str, seq: int,
                    leaf: bytes) -> SignableMessage:
    """The EIP-712 message the node signs for record `seq` with leaf `leaf`."""
    ledger_addr = to_checksum_address(_addr(ledger, "ledger"))
    node_addr = to_checksum_address(_addr(node, "node"))
    if len(leaf) != 32:
        raise ReceiptError(f"leaf must be 32 bytes, got {len(leaf)}")
    data = {
        "types": _TYPES,
        "primaryType": "Receipt",
        "domain": {"name": RECEIPT_DOMAIN_NAME, "version": RECEIPT_DOMAIN_VERSION, "chainId": int(chain_id),
                   "verifyingContract": ledger_addr},
        "message": {"chainId": int(chain_id), "ledger": ledger_addr, "node": node_addr, "seq": int(seq),
                    "leaf": bytes(leaf)},
    }
    return encode_typed_data(full_message=data)


#: Half the secp256k1 group order: a receipt's s must not exceed it (EIP-2 low-s).
SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def sign_receipt(record: Record, private_key: str | bytes) -> bytes:
    """The node's 65-byte receipt signature for `record` (its key must be the record's `node`)."""
    signed = Account.sign_message(receipt_message(record.chain_id, record.ledger, record.node, record.seq,
                                                  record.leaf()), private_key)
    return bytes(signed.signature)


def recover_receipt_signer(chain_id: int, ledger: bytes | str, node: bytes | str, seq: int, leaf: bytes,
                           signature: bytes | str) -> str:
    """The checksum address that signed this receipt (compare it with the record's node)."""
    sig = _hex_bytes(signature, "receipt") if isinstance(signature, str) else bytes(signature)
    if len(sig) != 65:
        raise ReceiptError(f"receipt must be a 65-byte signature, got {len(sig)} bytes")
    if int.from_bytes(sig[32:64], "big") > SECP256K1_HALF_N:
        # Every valid signature has a second form (n - s, flipped v); accepting only the low-s one (EIP-2, as
        # OpenZeppelin's ECDSA does) keeps one receipt one byte string.
        raise ReceiptError("receipt signature has a high s value (s > n/2); only the low-s form is accepted: "
                           "re-sign it, or normalize s to n - s and flip v")
    try:
        return str(Account.recover_message(receipt_message(chain_id, ledger, node, seq, leaf), signature=sig))
    except Exception as e:  # eth_keys raises several types for a bad (r, s, v)
        raise ReceiptError(f"receipt is not a valid signature: {e}") from e


def _hex_bytes(value: str, field: str) -> bytes:
    s = value[2:] if value[:2] in ("0x", "0X") else value
    try:
        return bytes.fromhex(s)
    except ValueError as e:
        raise ReceiptError(f"{field} must be 0x-hex, got {value[:20]!r}...") from e


def _addr(value: bytes | str, field: str) -> bytes:
    b = _hex_bytes(value, field) if isinstance(value, str) else bytes(value)
    if len(b) != 20:
        raise ReceiptError(f"{field} must be a 20-byte address, got {len(b)} bytes")
    return b


_DOMAIN_TYPEHASH = keccak256(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
_RECEIPT_TYPEHASH = keccak256(b"Receipt(uint256 chainId,address ledger,address node,uint64 seq,bytes32 leaf)")


class ReceiptSigner:
    """Signs receipts with the node's account for one (chain, ledger): what the node holds while serving.

    The hot path builds the EIP-712 digest by hand over the fixed layout (the domain separator computed once)
    instead of eth-account's general typed-data encoder, about ten times faster; tests check it signs exactly
    what `sign_receipt` signs."""

    def __init__(self, account: Any, chain_id: int, ledger: bytes) -> None:
        self._account = account
        self.chain_id = chain_id
        self.ledger = _addr(ledger, "ledger")
        self.node = _addr(str(account.address), "node")
        self._domain = keccak256(_DOMAIN_TYPEHASH + keccak256(RECEIPT_DOMAIN_NAME.encode())
                                 + keccak256(RECEIPT_DOMAIN_VERSION.encode()) + int(chain_id).to_bytes(32, "big")
                                 + bytes(12) + self.ledger)
        self._head = _RECEIPT_TYPEHASH + int(chain_id).to_bytes(32, "big") + bytes(12) + self.ledger + bytes(12) \
            + self.node
        # a local key signs through libsecp256k1 directly (RFC 6979 nonces, low s: the same bytes eth-account gives,
        # ~7x less CPU than its wrapper on every answer); an account without a raw key (e.g. a remote signer) signs
        # through its own unsafe_sign_hash
        key = getattr(account, "key", None)
        self._secp = coincurve.PrivateKey(bytes(key)) if isinstance(key, (bytes, bytearray)) and len(key) == 32 \
            else None

    def digest(self, seq: int, leaf: bytes) -> bytes:
        """`keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(Receipt))`."""
        if len(leaf) != 32:
            raise ReceiptError(f"leaf must be 32 bytes, got {len(leaf)}")
        if not 0 <= seq < 2**64:
            raise ReceiptError(f"seq must fit uint64, got {seq}")
        return keccak256(b"\x19\x01" + self._domain + keccak256(self._head + seq.to_bytes(32, "big") + leaf))

    def sign(self, seq: int, leaf: bytes) -> bytes:
        """The 65-byte signature over `Receipt(chainId, ledger, node, seq, leaf)`: r ‖ s ‖ v, v = 27 + recovery id."""
        digest = self.digest(seq, leaf)
        if self._secp is None:
            return bytes(self._account.unsafe_sign_hash(digest).signature)
        sig = self._secp.sign_recoverable(digest, hasher=None)
        return sig[:64] + bytes((27 + sig[64],))
