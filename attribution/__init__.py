"""Attribution of answers: records, durable store, Merkle trees, payloads, DA, chain, rewards.

This package is the only importer of web3, eth-account and ckzg. It never imports `inference` or `node`.
"""

from attribution.errors import AttributionError

__all__ = ["AttributionError"]
