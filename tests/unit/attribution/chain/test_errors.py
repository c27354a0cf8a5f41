"""Custom-error decoding, keys, ABI hashes and the deployment file format, without a chain."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st
from web3.exceptions import ContractCustomError

from attribution.chain import reverts
from attribution.chain.artifacts import CORE_CONTRACTS, ArtifactStore, abi_hash
from attribution.chain.client import revert_from
from attribution.chain.deploy import Deployment
from attribution.chain.errors import (
    ContractRevert,
    DeploymentError,
    DevKeyRefused,
    Panicked,
    RevertedWithReason,
    SignerError,
    UnknownRevert,
)
from attribution.chain.keys import (
    ENV_PRIVATE_KEY,
    account_from_keystore,
    dev_keys,
    load_signer,
    write_keystore,
)
from attribution.chain.reverts import ErrorRegistry, abi_type, decode_revert, error_signature, selector_of

ADDR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TOY_ABI: list[dict[str, Any]] = [
    {"type": "error", "name": "ToyThingNotFound", "inputs": [{"name": "id", "type": "bytes32"}]},
    {"type": "error", "name": "ToyUnauthorized", "inputs": [{"name": "caller", "type": "address"}]},
    {"type": "error", "name": "ToyMixed", "inputs": [
        {"name": "seq", "type": "uint64"}, {"name": "who", "type": "address[]"}, {"name": "delta", "type": "int32"},
        {"name": "pair", "type": "tuple",
         "components": [{"name": "a", "type": "uint8"}, {"name": "b", "type": "bool"}]},
        {"name": "", "type": "string"}]},
    {"type": "function", "name": "notAnError", "inputs": [], "outputs": []},
]


def sample(typ: str, param: dict[str, Any] | None = None) -> Any:
    """A valid value of ABI type `typ` (components from `param` for tuples)."""
    if typ.endswith("]"):
        inner = typ[: typ.rindex("[")]
        size = typ[typ.rindex("[") + 1: -1]
        return [sample(inner, param) for _ in range(int(size) if size else 2)]
    if typ.startswith("tuple") or typ.startswith("("):
        assert param is not None
        return tuple(sample(abi_type(c), c) for c in param["components"])
    if typ.startswith("uint"):
        return 2 ** int(typ[4:] or 256) - 3
    if typ.startswith("int"):
        return -5
    if typ == "address":
        return ADDR
    if typ == "bool":
        return True
    if typ == "string":
        return "why"
    if typ == "bytes":
        return b"\x01\x02"
    if typ.startswith("bytes"):
        return bytes(range(int(typ[5:])))
    raise AssertionError(typ)


def encode_error(entry: dict[str, Any]) -> tuple[bytes, list[Any]]:
    types = [abi_type(p) for p in entry["inputs"]]
    values = [sample(abi_type(p), p) for p in entry["inputs"]]
    return selector_of(error_signature(entry)) + encode(types, values), values


def test_custom_error_decodes_to_its_class_with_named_arguments() -> None:
    reg = ErrorRegistry()
    reg.add_abi(TOY_ABI)
    data, values = encode_error(TOY_ABI[2])
    exc = reg.decode("0x" + data.hex())
    cls = reg.error_class("ToyMixed")
    assert type(exc) is cls and cls.__name__ == "ToyMixed" and issubclass(cls, ContractRevert)
    assert exc.signature == "ToyMixed(uint64,address[],int32,(uint8,bool),string)"
    assert exc.args_by_name == {"seq": 2**64 - 3, "who": [ADDR, ADDR], "delta": -5, "pair": [253, True],
                                "arg4": "why"}
    assert exc.values == tuple(exc.args_by_name.values())
    assert exc.data == data and exc.selector == data[:4]
    assert str(exc).startswith("ToyMixed(seq=18446744073709551613")
    assert values[0] == 2**64 - 3


def test_generated_classes_get_fitting_builtin_mixins() -> None:
    reg = ErrorRegistry()
    reg.add_abi(TOY_ABI)
    assert issubclass(reg.error_class("ToyThingNotFound"), LookupError)
    assert issubclass(reg.error_class("ToyUnauthorized"), PermissionError)
    assert not issubclass(reg.error_class("ToyMixed"), LookupError | PermissionError)
    exc = reg.decode(encode_error(TOY_ABI[1])[0])
    assert exc.args_by_name == {"caller": ADDR}  # checksummed although eth_abi decodes lowercase
    with pytest.raises(LookupError, match="notAnError"):
        reg.error_class("notAnError")


def test_builtin_reverts_unknown_selectors_and_garbage() -> None:
    reason = decode_revert(selector_of("Error(string)") + encode(["string"], ["nope"]))
    assert isinstance(reason, RevertedWithReason) and reason.reason == "nope"
    panic = decode_revert(selector_of("Panic(uint256)") + encode(["uint256"], [0x11]))
    assert isinstance(panic, Panicked) and panic.code == 0x11
    unknown = decode_revert("0xdeadbeef0000")
    assert type(unknown) is UnknownRevert and unknown.data == bytes.fromhex("deadbeef0000")
    assert "0xdeadbeef" in str(unknown)
    assert type(decode_revert(None)) is UnknownRevert and type(decode_revert("0x")) is UnknownRevert
    truncated = decode_revert(selector_of("Panic(uint256)") + b"\x00" * 5)
    assert type(truncated) is UnknownRevert and truncated.signature == "Panic(uint256)"


def test_web3_revert_exception_is_translated() -> None:
    decode_revert(b"", abis=[TOY_ABI])  # register in the process-wide registry
    data, _ = encode_error(TOY_ABI[0])
    exc = revert_from(ContractCustomError("0x" + data.hex(), data="0x" + data.hex()))
    assert type(exc).__name__ == "ToyThingNotFound" and exc.args_by_name == {"id": bytes(range(32))}
    assert isinstance(exc, LookupError)


@pytest.fixture(scope="module")
def core_errors(forge_artifacts: ArtifactStore) -> list[dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for name in CORE_CONTRACTS:
        for entry in forge_artifacts.load(name).errors():
            entries[error_signature(entry)] = entry
    return list(entries.values())


def test_every_contract_error_round_trips(core_errors: list[dict[str, Any]]) -> None:
    assert len(core_errors) >= 40
    for entry in core_errors:
        data, values = encode_error(entry)
        exc = decode_revert(data)
        cls = getattr(reverts, entry["name"])  # `from attribution.chain.reverts import LedgerSeqGap` works
        assert type(exc) is cls, entry["name"]
        assert list(exc.args_by_name) == [p["name"] or f"arg{i}" for i, p in enumerate(entry["inputs"])]
        assert len(exc.values) == len(values)
        for got, want in zip(exc.values, values, strict=True):
            assert got == (list(want) if isinstance(want, tuple) else want), entry["name"]


def test_unknown_error_name_is_an_attribute_error() -> None:
    with pytest.raises(ImportError):
        from attribution.chain.reverts import NoSuchSolidityError  # noqa: F401


# ----------------------------------------------------------------------------------------------------------------
# keys
# ----------------------------------------------------------------------------------------------------------------


def test_dev_keys_are_anvils_accounts() -> None:
    keys = dev_keys()
    assert len(keys) == 10
    assert Account.from_key(keys[0]).address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert Account.from_key(keys[1]).address == ADDR


def test_keystore_round_trip_and_wrong_password(tmp_path: Any) -> None:
    key = "0x" + "5a" * 32
    path = write_keystore(tmp_path / "k.json", key, "pw", kdf="pbkdf2", iterations=2)
    assert path.stat().st_mode & 0o777 == 0o600
    assert account_from_keystore(path, "pw").address == Account.from_key(key).address
    with pytest.raises(SignerError, match="wrong password"):
        account_from_keystore(path, "nope")
    assert load_signer(10, keystore=path, password="pw").address == Account.from_key(key).address


def test_signer_sources_and_dev_key_refusal(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_PRIVATE_KEY, raising=False)
    monkeypatch.delenv("LORALEDGER_KEYSTORE_PASSWORD", raising=False)
    with pytest.raises(SignerError, match="no signing key"):
        load_signer(10)
    with pytest.raises(DevKeyRefused, match="31337"):
        load_signer(10, dev_index=0)
    assert load_signer(31337, dev_index=1).address == ADDR
    monkeypatch.setenv(ENV_PRIVATE_KEY, dev_keys()[2])
    with pytest.raises(DevKeyRefused, match="chain 8453"):
        load_signer(8453)
    monkeypatch.setenv(ENV_PRIVATE_KEY, "0x" + "77" * 32)
    assert load_signer(8453).address == Account.from_key("0x" + "77" * 32).address
    monkeypatch.setenv(ENV_PRIVATE_KEY, "not-a-key")
    with pytest.raises(SignerError) as ei:
        load_signer(8453)
    assert "not-a-key" not in str(ei.value)  # never echo key material
    keystore = write_keystore(tmp_path / "k.json", "0x" + "66" * 32, "pw", kdf="pbkdf2", iterations=2)
    with pytest.raises(SignerError, match="LORALEDGER_KEYSTORE_PASSWORD"):
        load_signer(8453, keystore=keystore)


# ----------------------------------------------------------------------------------------------------------------
# ABI hash, deployment file
# ----------------------------------------------------------------------------------------------------------------


def test_abi_hash_is_canonical() -> None:
    reordered = [json.loads(json.dumps(e, sort_keys=True)) for e in TOY_ABI]
    assert abi_hash(TOY_ABI) == abi_hash(reordered)
    changed = [*TOY_ABI[:-1], {"type": "function", "name": "other", "inputs": [], "outputs": []}]
    assert abi_hash(changed) != abi_hash(TOY_ABI)
    assert abi_hash(TOY_ABI).startswith("0x") and len(abi_hash(TOY_ABI)) == 66


def _deployment_json() -> dict[str, Any]:
    return {"version": 3, "chainId": 10, "deployer": ADDR.lower(), "deployBlock": 5, "deployedAt": "x",
            "contracts": {"AttributionLedger": {"address": ADDR.lower(), "abiHash": "0x00", "txHash": "0x",
                                                "block": 5}},
            "roles": {"governance": ADDR}, "params": {"minBond": "1"}}


def test_deployment_file_parse_and_errors(tmp_path: Any) -> None:
    d = Deployment.from_json(_deployment_json())
    assert d.address("AttributionLedger") == ADDR and d.deployer == ADDR and not d.devnet
    assert Deployment.load(d.save(tmp_path / "10.json")).to_json() == d.to_json()
    with pytest.raises(DeploymentError, match="no RewardDistributor"):
        d.address("RewardDistributor")
    with pytest.raises(DeploymentError, match="version 1"):  # v1 contracts: redeploy
        Deployment.from_json({**_deployment_json(), "version": 1})
    broken = _deployment_json()
    del broken["deployBlock"]
    with pytest.raises(DeploymentError, match="malformed"):
        Deployment.from_json(broken)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DeploymentError, match="unreadable"):
        Deployment.load(tmp_path / "bad.json")


@settings(max_examples=60, deadline=None)
@given(expected=st.integers(0, 2**64 - 1), got=st.integers(0, 2**64 - 1), who=st.binary(min_size=20, max_size=20),
       ids=st.lists(st.binary(min_size=32, max_size=32), max_size=4))
def test_decoding_round_trips_any_arguments(expected: int, got: int, who: bytes, ids: list[bytes]) -> None:
    reg = ErrorRegistry()
    entry = {"type": "error", "name": "PropGap", "inputs": [
        {"name": "expected", "type": "uint64"}, {"name": "got", "type": "uint64"},
        {"name": "who", "type": "address"}, {"name": "ids", "type": "bytes32[]"}]}
    reg.add_abi([entry])
    data = selector_of(error_signature(entry)) + encode(["uint64", "uint64", "address", "bytes32[]"],
                                                         [expected, got, who, ids])
    exc = reg.decode(data)
    assert type(exc) is reg.error_class("PropGap") and isinstance(exc, ValueError)
    assert exc.args_by_name == {"expected": expected, "got": got, "who": to_checksum_address(who), "ids": ids}
    assert type(reg.decode(data[:-1])) is UnknownRevert  # a truncated tail is never mis-decoded
