// Node 20 lacks fs.globSync (Node 22); the conformance suite imports it. This module is fs with a
// small globSync for the patterns the suite uses ("*" and "**" path segments, "*" within a name).
import * as fs from 'node:fs';
import path from 'node:path';
export * from 'node:fs';
export default fs.default ?? fs;

function segmentRegExp(segment) {
  const escaped = segment.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${escaped}$`);
}

export function globSync(pattern, options = {}) {
  const cwd = options.cwd ?? process.cwd();
  const patterns = Array.isArray(pattern) ? pattern : [pattern];
  const found = new Set();
  for (const p of patterns) {
    const absolute = path.isAbsolute(p);
    const segments = p.split('/').filter((s, i) => s !== '' || i > 0);
    const walk = (dir, rest, shown) => {
      if (rest.length === 0) { found.add(shown); return; }
      const [head, ...tail] = rest;
      if (head === '**') {
        walk(dir, tail, shown);
        for (const entry of safeReaddir(dir)) {
          if (entry.isDirectory()) walk(path.join(dir, entry.name), rest, shown ? path.join(shown, entry.name) : entry.name);
        }
        return;
      }
      if (!/[*?]/.test(head)) {
        const next = path.join(dir, head);
        if (fs.existsSync(next)) walk(next, tail, shown ? path.join(shown, head) : head);
        return;
      }
      const re = segmentRegExp(head);
      for (const entry of safeReaddir(dir)) {
        if (re.test(entry.name)) walk(path.join(dir, entry.name), tail, shown ? path.join(shown, entry.name) : entry.name);
      }
    };
    walk(absolute ? '/' : cwd, segments, absolute ? '/' : '');
  }
  return [...found].sort();
}

function safeReaddir(dir) {
  try { return fs.readdirSync(dir, { withFileTypes: true }); } catch { return []; }
}
