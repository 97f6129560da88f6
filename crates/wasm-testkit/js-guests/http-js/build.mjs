// Componentizes the JavaScript HTTP handler. Run by `cargo xtask fixtures`:
//   node build.mjs <componentize-js entry> <source.js> <wit dir> <world> <out.wasm>
// Every default feature stays on: the `fetch` event serves wasi:http/incoming-handler,
// `fetch()` uses wasi:http/outgoing-handler, and the engine imports clocks, random and
// stdio as a JavaScript runtime does.
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';

const [entry, source, wit, world, out] = process.argv.slice(2);
const { componentize } = await import(pathToFileURL(entry).href);
const { component } = await componentize(await readFile(source, 'utf8'), {
  witPath: wit,
  worldName: world,
});
await mkdir(dirname(out), { recursive: true });
await writeFile(out, component);
console.error(`built ${out} (${Math.round(component.byteLength / 1024)} KiB)`);
