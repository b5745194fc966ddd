import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The subset of JSON Schema that config.schema.json uses, as far as the loader reads it. */
export interface JsonSchema {
  type?: string;
  title?: string;
  description?: string;
  placeholder?: string;
  default?: unknown;
  pattern?: string;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  required?: string[];
  oneOf?: JsonSchema[];
  enum?: unknown[];
  [keyword: string]: unknown;
}

export interface ConfigSchemaFile {
  pluginAlias: string;
  pluginType: string;
  schema: JsonSchema;
  layout?: unknown[];
}

const SCHEMA_FILE = 'config.schema.json';

/**
 * Finds config.schema.json by walking up from this module. The same file is the Homebridge UI form
 * and the validator, so they can never disagree; walking up (instead of a fixed `../..`) keeps this
 * working from src/ under tsx, from dist/, and from an installed package.
 */
export function findSchemaFile(startDir: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = startDir;
  for (;;) {
    const candidate = join(dir, SCHEMA_FILE);
    if (existsSync(candidate) && existsSync(join(dir, 'package.json'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(`${SCHEMA_FILE} was not found above ${startDir}; the plugin package is incomplete, reinstall it`);
    }
    dir = parent;
  }
}

let cached: ConfigSchemaFile | undefined;

/** Reads and parses config.schema.json once per process. */
export function readSchemaFile(path?: string): ConfigSchemaFile {
  if (!path && cached) return cached;
  const file = path ?? findSchemaFile();
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as ConfigSchemaFile;
  if (typeof parsed.schema !== 'object' || parsed.schema === null) {
    throw new Error(`${file} has no "schema" object`);
  }
  if (!path) cached = parsed;
  return parsed;
}

/** The plugin's own version from package.json (shown as the accessories' firmware revision). */
export function readPluginVersion(): string {
  try {
    const file = join(dirname(findSchemaFile()), 'package.json');
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
    return typeof parsed.version === 'string' ? parsed.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}
