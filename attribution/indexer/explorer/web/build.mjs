// Build the explorer: ABIs from the forge artifacts (out/), then one esbuild bundle. Run by `make setup`.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..", "..");
const out = process.env.FORGE_OUT ?? join(root, "out");
// read from the compiled contracts, never copied by hand, so a contract change reaches the page on the next build;
// only the items the pages use (and every custom error, so a revert reads by name) go into the bundle
const abi = (file, name, used) => JSON.parse(readFileSync(join(out, file, `${name}.json`), "utf8")).abi
  .filter((x) => x.type === "error" || used.includes(x.name));
const abis = {
  AttributionLedger: abi("AttributionLedger.sol", "AttributionLedger",
    ["BatchPosted", "postBatch", "batch", "verifyRecord", "nextSeq"]),
  RewardDistributor: abi("RewardDistributor.sol", "RewardDistributor",
    ["RootProposed", "currentEpoch", "currentRoot", "claimed", "proposal", "claim"]),
  ERC20: abi("DevToken.sol", "DevToken", ["balanceOf"]) };
writeFileSync(join(here, "src", "abis.json"), JSON.stringify(abis));

const dist = join(here, "dist");
mkdirSync(dist, { recursive: true });
const result = await build({ entryPoints: [join(here, "src", "main.js")], bundle: true, format: "esm", minify: true,
  target: ["es2022"], outfile: join(dist, "app.js"), legalComments: "none", metafile: true, logLevel: "warning" });
copyFileSync(join(here, "index.html"), join(dist, "index.html"));
copyFileSync(join(here, "app.css"), join(dist, "app.css"));
const bytes = Object.values(result.metafile.outputs).reduce((a, o) => a + o.bytes, 0);
console.log(`explorer: dist/app.js ${(bytes / 1024).toFixed(0)} KiB`);
