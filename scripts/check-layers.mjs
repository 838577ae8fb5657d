// Fails when src/stack (the pure core) imports anything outside itself, or uses clocks, timers or
// randomness directly: the core takes time and randomness from its caller (../shared/STYLE.md).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const core = join(root, 'src', 'stack');
const problems = [];

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (path.endsWith('.ts')) check(path);
  }
}

function check(path) {
  const text = readFileSync(path, 'utf8');
  const rel = relative(root, path);
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
    const spec = m[1];
    const target = spec.startsWith('.') ? resolve(dirname(path), spec) : null;
    if (!target || !target.startsWith(core))
      problems.push(`${rel}: imports '${spec}' from outside src/stack`);
  }
  for (const m of text.matchAll(
    /\b(setTimeout|setInterval|setImmediate|Date\.now|Math\.random|performance\.now|process\.)/g,
  )) {
    problems.push(`${rel}: uses ${m[1]} (the core takes time and randomness from its caller)`);
  }
}

walk(core);
if (problems.length > 0) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
