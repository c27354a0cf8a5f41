"""`attribution.hashing`: the one EIP-55 implementation against eth_utils (web3's), on random addresses, and the
error each caller raised for a bad address before it used this one."""

from __future__ import annotations

import pytest
from eth_utils import is_address as eth_is_address
from eth_utils import to_checksum_address as eth_checksum
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.chain.base import checksum as chain_checksum
from attribution.hashing import is_address, keccak256, to_checksum_address
from attribution.rewards.rule import RewardsError
from attribution.rewards.rule import checksum as rewards_checksum


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=20, max_size=20), st.lists(st.booleans(), min_size=40, max_size=40), st.booleans())
def test_checksum_and_is_address_match_eth_utils(raw: bytes, upper: list[bool], prefix: bool) -> None:
    expected = eth_checksum(raw)
    assert to_checksum_address(raw) == expected
    text = ("0x" if prefix else "") + "".join(c.upper() if u else c for c, u in zip(raw.hex(), upper, strict=True))
    assert to_checksum_address(text) == expected  # any case in: web3 does not check the input's case either
    assert is_address(text) and eth_is_address(text)
    assert is_address(expected) and is_address(raw.hex()) and is_address(raw.hex().upper())


@pytest.mark.parametrize("bad", ["", "0x", "0x1234", "0x" + "g" * 40, "0x" + "ab" * 21, b"\x00" * 19, 20, None])
def test_invalid_addresses_keep_each_callers_error(bad: object) -> None:
    assert not is_address(bad) and not eth_is_address(bad)
    with pytest.raises(ValueError):
        to_checksum_address(bad)  # type: ignore[arg-type]
    with pytest.raises(RewardsError):  # the reward rule's own error type, as before
        rewards_checksum(bad)  # type: ignore[arg-type]
    if isinstance(bad, str):
        with pytest.raises(ValueError, match="is not an address"):
            chain_checksum(bad)


def test_keccak256_is_ethereums_not_sha3() -> None:
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
