"""`eth_getLogs` paged over block ranges.

Real RPC providers refuse a scan from block 0 to the head: some cap the block range (`exceed maximum block range:
5000`, `eth_getLogs is limited to a 10,000 range`), others the number of results (`query returned more than 10000
results`, `Log response size exceeded`). `iter_logs` asks for at most `ChainClient.log_block_range` blocks at a
time; when the provider refuses a page for its size, the page is halved and asked again (down to one block).
A range limit lowers the client's `log_block_range` for later scans; after a result-count refusal the page grows
back once a smaller one succeeded (dense and sparse stretches of a chain differ). Logs come in chain order.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from web3.types import FilterParams, LogReceipt

from attribution.chain.errors import RpcError
from attribution.hashing import to_checksum_address

log = logging.getLogger(__name__)

#: Default largest page, in blocks (what most hosted providers accept; lowered on the first range refusal).
DEFAULT_LOG_BLOCK_RANGE = 2_000

# Provider messages that mean "this page is too big" (lower-case), from geth/op-geth, Alchemy, Infura, QuickNode,
# Ankr, Cloudflare, Base. A size refusal names the result count or weight; a range refusal only the block span.
_SIZE_REFUSAL = re.compile(r"response size|more than [\d,]+ (results|logs|entries)|too many (results|logs)|"
                           r"query returned more|results? limit|limit exceeded|query timeout|timed? ?out|http 413|"
                           r"payload too large|response is too big")
_RANGE_REFUSAL = re.compile(r"block range|range (is )?too|range limit|max(imum)? range|limited to .*range|"
                            r"range of [\d,]+ blocks|too wide|exceeds? max(imum)? block")

TopicFilter = bytes | str | Sequence[bytes | str] | None


class LogSource(Protocol):
    """What `iter_logs` needs of an RPC client (`ChainClient` is one): the head, one `eth_getLogs` call with the
    client's error mapping, and the page cap it may lower for later scans."""

    log_block_range: int

    def block_number(self) -> int:
        """The latest block number."""
        ...

    def fetch_logs(self, params: FilterParams) -> list[LogReceipt]:
        """One `eth_getLogs` request; `RpcError` (with the provider's message) when it is refused."""
        ...


def classify_refusal(message: str) -> str | None:
    """`"size"` when the provider refused a page for its result count or weight, `"range"` for its block span,
    None when the error is about something else (bad params, unknown method: a smaller page would not help)."""
    text = message.lower()
    if _SIZE_REFUSAL.search(text):
        return "size"
    if _RANGE_REFUSAL.search(text):
        return "range"
    return None


def _hex_topic(value: bytes | str) -> str:
    raw = bytes.fromhex(value[2:] if value.startswith("0x") else value) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise ValueError(f"a topic is 32 bytes, got {len(raw)}")
    return "0x" + raw.hex()


def _topics(topics: Sequence[TopicFilter]) -> list[Any]:
    out: list[Any] = []
    for t in topics:
        if t is None:
            out.append(None)
        elif isinstance(t, bytes | str):
            out.append(_hex_topic(t))
        else:
            out.append([_hex_topic(x) for x in t])
    while out and out[-1] is None:
        out.pop()
    return out


def iter_logs(client: LogSource, *, address: str | Sequence[str], from_block: int,
              to_block: int | str = "latest", topics: Sequence[TopicFilter] = (), reverse: bool = False,
              on_page: Callable[[int, int, int], None] | None = None) -> Iterator[LogReceipt]:
    """Yield the logs of `address` matching `topics` in `[from_block, to_block]`, page by page, in chain order.

    `from_block` has no default on purpose: start at the deployment block (`Deployment.deploy_block`), never 0.
    `to_block="latest"` is pinned to the head once, so every page belongs to one consistent range.
    `reverse=True` walks from `to_block` back to `from_block` and yields newest first (find a recent event without
    reading all history). `on_page(first, last, count)` is called after each page (progress bars). Raises
    `RpcError` when a single block is still refused, `RpcUnavailable` when the endpoint is down.
    """
    if from_block < 0:
        raise ValueError(f"from_block must be >= 0, got {from_block}")
    end = client.block_number() if to_block == "latest" else int(to_block)
    addresses = [to_checksum_address(address)] if isinstance(address, str) else [
        to_checksum_address(a) for a in address]
    topic_list = _topics(topics)
    cap = max(1, int(client.log_block_range))
    span = cap
    lo, hi = from_block, end  # the blocks not read yet
    while lo <= hi:
        start, stop = (max(lo, hi - span + 1), hi) if reverse else (lo, min(lo + span - 1, hi))
        params: FilterParams = {"address": addresses if len(addresses) != 1 else addresses[0],
                                "fromBlock": start, "toBlock": stop}
        if topic_list:
            params["topics"] = topic_list
        try:
            page = client.fetch_logs(params)
        except RpcError as e:
            kind = classify_refusal(str(e))
            if kind is None:
                raise
            if stop == start:
                raise RpcError(f"eth_getLogs: the RPC refuses even the logs of block {start} alone ({e}); use a "
                               "provider without that limit (or a local node)") from e
            span = max(1, (stop - start + 1) // 2)
            if kind == "range" and span < cap:
                cap = span
                client.log_block_range = cap
            log.debug("eth_getLogs %d..%d refused (%s limit); retrying with %d blocks", start, stop, kind, span)
            continue
        yield from (reversed(page) if reverse else page)
        if on_page is not None:
            on_page(start, stop, len(page))
        if reverse:
            hi = start - 1
        else:
            lo = stop + 1
        span = min(cap, span * 2)


def get_logs(client: LogSource, *, address: str | Sequence[str], from_block: int, to_block: int | str = "latest",
             topics: Sequence[TopicFilter] = ()) -> list[LogReceipt]:
    """All logs of `iter_logs` as a list."""
    return list(iter_logs(client, address=address, from_block=from_block, to_block=to_block, topics=topics))
