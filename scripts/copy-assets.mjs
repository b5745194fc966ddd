// Copies the non-TypeScript runtime assets (the watch page, helper scripts) into dist/.
import { cpSync, existsSync } from 'node:fs';

const assets = [['src/web/page', 'dist/web/page'], ['src/homebridge-ui/public', 'dist/homebridge-ui/public']];
for (const [from, to] of assets) {
  // A folder's README.md is for contributors, not part of what is served or installed.
  if (existsSync(from)) cpSync(from, to, { recursive: true, filter: (source) => !source.endsWith('README.md') });
}
