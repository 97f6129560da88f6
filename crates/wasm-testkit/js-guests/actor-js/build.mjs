// Componentizes the JavaScript actor. Run by `cargo xtask fixtures`:
//   node build.mjs <componentize-js entry> <source.js> <wit dir> <world> <out.wasm>
// HTTP is switched off (no `fetch`, no wasi:http imports): an actor messages through
// airssys:actor/messaging only.
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
