// Same-origin reads of the indexer's JSON API (look-ups and plots only: the verify and claim pages do not use it
// for anything they report as checked).
export class NotFound extends Error {}

export async function api(path) {
  const res = await fetch(path, { headers: { accept: "application/json" } });
  const body = await res.json().catch(() => ({}));
  if (res.status === 404) throw new NotFound(body?.error?.message ?? `${path} not found`);
  if (!res.ok) throw new Error(body?.error?.message ?? `${path} answered ${res.status}`);
  return body;
}

let config;
/** The explorer's settings (chain, contracts, token, the RPC and DA URLs it suggests); `?rpc=&da=&ledger=` override. */
export async function getConfig() {
  if (!config) {
    config = await api("/v1/explorer/config");
    const q = new URLSearchParams(location.search);
    for (const [k, key] of [["rpc", "rpcUrl"], ["da", "daUrl"], ["ledger", "ledger"]]) if (q.get(k)) config[key] = q.get(k);
  }
  return config;
}
