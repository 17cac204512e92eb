// Bundles src/ into static/ (committed; shipped in the wheel, so no user ever builds).
// The bundle's first line records a SHA-256 of its sources, which
// tests/test_web_assets.py recomputes: a stale bundle fails the suite.
// The same hash (sync/web/assets.py: sources_hash) names the service worker's cache.
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { join, relative } from "node:path";
import * as esbuild from "esbuild";

const here = new URL(".", import.meta.url).pathname;

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? walk(path) : [path];
  });
}

// Keep in step with sources_hash() in assets.py: sorted relative paths, each as
// "path\0content\0".
export function sourcesHash() {
  const files = [...walk(join(here, "src")), join(here, "build.mjs"), join(here, "package-lock.json")]
    .map((path) => relative(here, path).split("\\").join("/"))
    .sort();
  const hash = createHash("sha256");
  for (const name of files) {
    hash.update(name + "\0");
    hash.update(readFileSync(join(here, name)));
    hash.update("\0");
  }
  return hash.digest("hex");
}

const digest = sourcesHash();
mkdirSync(join(here, "static"), { recursive: true });
// One minified bundle of an entry, its first line recording the sources' hash.
async function bundle(entry, out, name) {
  const result = await esbuild.build({
    entryPoints: [join(here, "src", entry)],
    bundle: true,
    minify: true,
    format: "iife",
    target: ["chrome110", "firefox115", "safari16"],
    jsx: "automatic",
    jsxImportSource: "preact",
    legalComments: "none",
    write: false,
    banner: { js: `/* ${name} sources sha256:${digest} */` },
  });
  writeFileSync(join(here, "static", out), result.outputFiles[0].contents);
}

await bundle("main.jsx", "app.js", "castroom-web");
// The presentation page is its own small bundle: it needs none of the dashboard.
await bundle("present.jsx", "present.js", "castroom-present");
for (const name of ["index.html", "app.css", "sw.js", "present.html", "present.css"]) {
  const text = readFileSync(join(here, "src", name), "utf8");
  writeFileSync(join(here, "static", name), text.replaceAll("__VERSION__", digest.slice(0, 16)));
}
console.log(`built static/ (sources sha256:${digest.slice(0, 12)})`);
