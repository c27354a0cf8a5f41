"""The explorer: the indexer's web pages (look-ups, in-browser answer verification, contributor claims, plots).

- `config`: what the pages are told (chain, contracts, token, the RPC and DA URLs they suggest).
- `chainview`: the chain and DA reads behind the look-ups (fee credit, bond, rewards epochs and payloads).
- `lookups`: database reads for the pages (a batch's records, records per hour, usage per epoch, asset history).
- `search`: one search box: a query to the page that shows it.
- `routes`: the JSON endpoints under `/v1/explorer`.
- `pages`: the static front-end (built from `web/` by `make setup`), its stable URLs and Content-Security-Policy.

The pages verify answers and build claim proofs in the browser against the chain and DA (`web/src/verify.js`,
`web/src/claim.js`); they use this server only for look-ups and plots.
"""

from attribution.indexer.explorer.config import ExplorerConfig, explorer_config
from attribution.indexer.explorer.pages import mount_explorer

__all__ = ["ExplorerConfig", "explorer_config", "mount_explorer"]
