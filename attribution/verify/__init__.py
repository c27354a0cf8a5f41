"""Verification from the chain and DA alone: posted batches (`batches`), saved answers (`answers`) and the dApp
SDK (`client.LedgerClient`). The batch verifier's names are importable from here."""

from attribution.verify.batches import *  # noqa: F403
from attribution.verify.batches import __all__  # noqa: F401
