// Componentizes a JavaScript plugin. Run by `cargo xtask fixtures`:
//   node build.mjs <componentize-js entry> <source.js> <wit dir> <world> <out.wasm>
// WASI's HTTP features are switched off: the plugin imports only what the WIT names
// and the WASI 0.2 interfaces its engine needs (clocks, random, stdio).
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';

const [entry, source, wit, world, out] = process.argv.slice(2);
const { componentize } = await import(pathToFileURL(entry).href);
const { component } = await componentize(await readFile(source, 'utf8'), {
  witPath: wit,
  worldName: world,
  disableFeatures: ['http', 'fetch-event'],
});
await mkdir(dirname(out), { recursive: true });
await writeFile(out, component);
console.error(`built ${out} (${Math.round(component.byteLength / 1024)} KiB)`);
