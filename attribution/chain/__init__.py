"""The chain layer: forge artifacts, RPC client with local signing, decoded custom errors, contract wrappers,
deployment. See docs/chain.md."""
