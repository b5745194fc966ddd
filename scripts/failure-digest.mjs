#!/usr/bin/env node
/**
 * Ends a failed test run with a short digest of what the peers (test cameras, Homebridge) logged
 * during each failed test: its notable lines (stalls, losses, errors, reconnects) and its last few.
 * CI keeps only the end of a long run's output, and there the runner's summary names a failed test
 * and its error, not its cause. The whole logs are in the file given (scripts/test.sh names it in
 * WRC_FAILURE_LOG_FILE, and test/helpers/print-on-failure.ts appends to it).
 *
 * Usage: node scripts/failure-digest.mjs file
 */
import { existsSync, readFileSync } from 'node:fs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node scripts/failure-digest.mjs file');
  process.exit(2);
}
/** Lines worth seeing from any peer's log: what went wrong, and what was done about it. */
const NOTABLE = /stall|block|restart|drop|lost|offline|reconnect|no video|timed? ?out|refus|denied|error|fail|warn|closed|exit/i;
const NOTABLE_PER_BLOCK = 12;
const TAIL_PER_BLOCK = 6;
const MAX_LINES = 90;

if (!existsSync(file)) process.exit(0);
const blocks = [];
for (const line of readFileSync(file, 'utf8').split('\n')) {
  if (line.startsWith('----- end of')) continue;
  if (line.startsWith('----- ')) blocks.push({ header: line, lines: [] });
  else if (line.trim() && blocks.length > 0) blocks.at(-1).lines.push(line);
}
if (blocks.length === 0) process.exit(0);

const out = [`===== what the peers logged during the failed tests: notable lines, then the last ${TAIL_PER_BLOCK} (all of it: ${file}) =====`];
for (const { header, lines } of blocks) {
  const tailFrom = Math.max(0, lines.length - TAIL_PER_BLOCK);
  const notable = lines
    .map((line, index) => ({ line, index }))
    .filter(({ line, index }) => index < tailFrom && NOTABLE.test(line))
    .slice(-NOTABLE_PER_BLOCK);
  out.push(header);
  let previous = -1;
  for (const { line, index } of [...notable, ...lines.slice(tailFrom).map((line, i) => ({ line, index: tailFrom + i }))]) {
    if (index > previous + 1) out.push('  …');
    out.push(`  ${line.length > 400 ? `${line.slice(0, 400)}…` : line}`);
    previous = index;
  }
}
if (out.length > MAX_LINES) out.splice(MAX_LINES - 1, out.length, `  … (${out.length - MAX_LINES + 1} more lines in ${file})`);
console.log(out.join('\n'));
