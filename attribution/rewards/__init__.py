"""Rewards: the rule (`reference`: the short reference function, record by record; `rule`: the fast path;
`inputs`: the registry at time t, the share schedule, the rule's inputs and outputs), the cumulative reward tree
(`tree`) and epochs on chain (`epochs`: plan, compute, publish, verify, claim). The rule's names are importable
from here."""

from attribution.rewards.inputs import *  # noqa: F403
from attribution.rewards.inputs import __all__ as _inputs_all
from attribution.rewards.reference import ReferenceRewards, posted_at, record_time, reference_rewards
from attribution.rewards.rule import compute_rewards

__all__ = [*_inputs_all, "compute_rewards", "ReferenceRewards", "posted_at", "record_time", "reference_rewards"]
