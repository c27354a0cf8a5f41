"""URL redaction and the classification of providers' `eth_getLogs` refusals (pure functions)."""

from __future__ import annotations

import logging

import pytest

from attribution.chain.logs import classify_refusal
from attribution.chain.redact import RedactingFilter, redact_url, register_url, scrub


@pytest.mark.parametrize(("url", "shown"), [
    ("https://opt-mainnet.g.alchemy.com/v2/AbCdEf123456", "https://opt-mainnet.g.alchemy.com/***"),
    ("https://optimism-mainnet.infura.io/v3/0123456789abcdef", "https://optimism-mainnet.infura.io/***"),
    ("https://rpc.example.org:8443/?apikey=s3cr3tvalue", "https://rpc.example.org:8443/***"),
    ("https://user:pa55word@rpc.example.org", "https://***@rpc.example.org"),
    ("https://mainnet.optimism.io", "https://mainnet.optimism.io"),
    ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
    ("http://localhost:8545/", "http://localhost:8545/"),
    ("not a url", "***"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_scrub_and_log_filter_hide_registered_secrets() -> None:
    url = "https://base.example.net/rpc/KeY-7788aabbccdd?token=ToKeN-99887766"
    assert register_url(url) == "https://base.example.net/***"
    assert scrub(f"POST {url} failed") == "POST *** failed"
    assert "KeY-7788" not in scrub('"POST /rpc/KeY-7788aabbccdd?token=ToKeN-99887766 HTTP/1.1" 200')
    assert scrub("nothing secret in v2 or rpc") == "nothing secret in v2 or rpc"  # short segments are kept
    record = logging.LogRecord("urllib3.connectionpool", logging.DEBUG, __file__, 1, "%s %s", ("GET", url), None)
    assert RedactingFilter().filter(record)
    assert "KeY-7788" not in record.getMessage() and "ToKeN-9988" not in record.getMessage()
    assert logging.getLogger("urllib3.connectionpool").filters  # installed where the URL is logged


@pytest.mark.parametrize(("message", "kind"), [
    ("exceed maximum block range: 5000", "range"),  # geth / op-geth
    ("eth_getLogs is limited to a 10,000 range", "range"),  # QuickNode
    ("block range is too wide", "range"),  # Ankr
    ("eth_getLogs and eth_newFilter are limited to a 800 blocks range", "range"),  # Cloudflare
    ("block range too large", "range"),
    ("query returned more than 10000 results. Try with this block range [0x1, 0x2].", "size"),  # Infura
    ("Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range", "size"),  # Alchemy
    ("query timeout exceeded", "size"),
    ("invalid params: unknown field", None),
    ("execution reverted", None),
])
def test_classify_refusal(message: str, kind: str | None) -> None:
    assert classify_refusal(f"eth_getLogs: the node answered with an error: {message}") == kind
