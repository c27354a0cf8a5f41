"""Rewards: the rule (`rule`: the short reference function and the fast path), the cumulative reward tree (`tree`)
and epochs on chain (`epochs`: plan, compute, publish, verify, claim). The rule's names are importable from here."""

from attribution.rewards.rule import *  # noqa: F403
from attribution.rewards.rule import __all__  # noqa: F401
