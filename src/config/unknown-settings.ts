/**
 * Settings the schema does not know (typos, settings of another version), found by walking the
 * value beside its schema, each with a suggestion when a known key is close.
 */
import { formatPath } from './errors.js';
import type { JsonSchema } from './schema-file.js';
import { isDict } from './defaults.js';

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] ?? 0;
      row[j] = Math.min(current + 1, (row[j - 1] ?? 0) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] ?? 0;
}

function suggest(key: string, known: string[]): string {
  const lower = key.toLowerCase();
  const best = known
    .map((candidate) => ({ candidate, distance: candidate.toLowerCase() === lower ? 0 : levenshtein(lower, candidate.toLowerCase()) }))
    .sort((x, y) => x.distance - y.distance)[0];
  return best && best.distance <= 2 ? ` — did you mean '${best.candidate}'?` : '';
}

/** Paths of settings the schema does not know, with a suggestion for likely typos. */
export function unknownSettings(value: unknown, schema: JsonSchema | undefined, segments: Array<string | number>, skip: ReadonlySet<string> = new Set()): string[] {
  if (!schema) return [];
  if (Array.isArray(value)) {
    return value.flatMap((item, i) => unknownSettings(item, schema.items, [...segments, i]));
  }
  if (!isDict(value) || !schema.properties) return [];
  const known = Object.keys(schema.properties);
  const found: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    if (skip.has(key)) continue;
    const childSchema = schema.properties[key];
    if (!childSchema) {
      found.push(`unknown setting '${formatPath([...segments, key])}' is ignored${suggest(key, known)}`);
      continue;
    }
    found.push(...unknownSettings(child, childSchema, [...segments, key]));
  }
  return found;
}
