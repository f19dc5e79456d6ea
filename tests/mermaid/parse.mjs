// Parses each Mermaid file named on the command line with Mermaid itself (the version in
// package.json), as a Markdown renderer would: prints `ok FILE TYPE` or `FAIL FILE: why`
// per file, and exits 1 if any failed. Mermaid needs a DOM to load; jsdom gives it one.
// Installed by `.ci/run` (`npm ci --prefix tests/mermaid`); used offline by tests/ux.rs.
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!DOCTYPE html><body></body>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');

let failed = 0;
for (const file of process.argv.slice(2)) {
  try {
    const parsed = await mermaid.parse(readFileSync(file, 'utf8'));
    console.log(`ok ${file} ${parsed.diagramType}`);
  } catch (e) {
    failed++;
    const why = String(e?.message ?? e).split('\n').slice(0, 4).join(' | ');
    console.log(`FAIL ${file}: ${why}`);
  }
}
process.exit(failed ? 1 : 0);
