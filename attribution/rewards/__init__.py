"""Rewards: the rule (`reference`: the short reference function, record by record; `rule`: the fast path; `terms`:
the registry at time t, share schedule, inputs and outputs), the cumulative reward tree (`tree`) and epochs on chain
(`epochs`: plan, compute, publish, verify, claim). The rule's names are importable from here."""

from attribution.rewards.reference import ReferenceRewards, posted_at, reference_rewards
from attribution.rewards.rule import compute_rewards
from attribution.rewards.terms import *  # noqa: F403
from attribution.rewards.terms import __all__ as _terms_all

__all__ = [*_terms_all, "compute_rewards", "ReferenceRewards", "posted_at", "reference_rewards"]
