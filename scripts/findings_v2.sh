#!/usr/bin/env bash
# Issue 21's Python-side findings (N6, N7, N8, high-s receipts) shown on v2 and on HEAD: checks out the tree of the
# commit before contracts v3 landed into a temporary git worktree, runs scripts/findings_v2.py against its
# `attribution` package ("attack works on v2"), then against this tree's ("refused"). The forge-side findings'
# v2 evidence is the PoC commit (docs/contracts.md, "v3: the attacker review of v2"). Run from the repo root:
#   bash scripts/findings_v2.sh
set -euo pipefail
PY="${PYTHON:-.venv/bin/python}"
# the first commit of contracts v3 on this history; v2 is its parent
V3=$(git log --format=%H --grep '^contracts v3: batch header record timestamps' -- contracts/src | tail -n 1)
[ -n "$V3" ] || { echo "cannot find the contracts v3 commit in this history (shallow clone?)" >&2; exit 2; }
V2=$(git rev-parse "$V3^")
TMP=$(mktemp -d)
trap 'git worktree remove --force "$TMP/v2" >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
git worktree add --detach "$TMP/v2" "$V2" >/dev/null 2>&1
echo "== v2: $(git log -1 --format='%h %s' "$V2" | cut -c1-100)"
PYTHONPATH="$TMP/v2" "$PY" scripts/findings_v2.py v2
echo "== HEAD: $(git log -1 --format='%h %s' HEAD | cut -c1-100)"
PYTHONPATH="$PWD" "$PY" scripts/findings_v2.py HEAD
