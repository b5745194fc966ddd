/**
 * The page's QR encoder, decoded by an independent reader (zbar's zbarimg, Debian package
 * zbar-tools) at every version it can reach, both error-correction levels and non-ASCII text.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
// @ts-expect-error -- a plain browser module without typings; the page imports the same file.
import { qrMatrix } from '../../src/homebridge-ui/public/qr.js';

const run = promisify(execFile);
const encode = qrMatrix as (text: string, ecl?: 'L' | 'M') => boolean[][];

/** The matrix as a binary PGM, 4 px per module, with the 4-module quiet zone readers need. */
function toPgm(matrix: boolean[][]): Buffer {
  const scale = 4;
  const n = (matrix.length + 8) * scale;
  const pixels = Buffer.alloc(n * n, 255);
  matrix.forEach((row, y) => row.forEach((dark, x) => {
    if (!dark) return;
    for (let dy = 0; dy < scale; dy++) pixels.fill(0, ((y + 4) * scale + dy) * n + (x + 4) * scale, ((y + 4) * scale + dy) * n + (x + 5) * scale);
  }));
  return Buffer.concat([Buffer.from(`P5\n${n} ${n}\n255\n`), pixels]);
}

describe('QR encoder (decoded by zbarimg)', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'wrc-qr-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  const decode = async (text: string, ecl: 'L' | 'M'): Promise<{ decoded: string; size: number }> => {
    const matrix = encode(text, ecl);
    const file = join(dir, `qr-${ecl}-${text.length}.pgm`);
    await writeFile(file, toPgm(matrix));
    const { stdout } = await run('zbarimg', ['-q', '--raw', '-Sdisable', '-Sqrcode.enable', file]);
    return { decoded: stdout.replace(/\n$/, ''), size: matrix.length };
  };

  const link = 'http://192.168.0.20:8090/s/wrc1.q3VtZ3Jc0aVb1sRzT9w2Ag.m5k2x0.Yb3pQ2VvZx0b9m1sT7cW4d8Jk2nL5rP0aE6fG3hI1jK';
  for (const [text, ecl, size] of [
    ['hi', 'M', 21],
    ['http://127.0.0.1:8090/', 'L', 25],
    [link, 'M', 41],
    [link, 'L', 37],
    ['https://cameras.example.com/s/' + 'x'.repeat(150), 'M', 53],
    ['https://cameras.example.com/s/' + 'y'.repeat(183), 'M', 57],
    ['Überall 📷 ' + 'é'.repeat(40), 'M', 41],
  ] as const) {
    it(`${ecl} ${text.length} chars -> ${size}x${size} modules, decodes to the same text`, async () => {
      const { decoded, size: got } = await decode(text, ecl);
      assert.equal(got, size);
      assert.equal(decoded, text);
    });
  }

  it('refuses text longer than version 10 holds', () => {
    assert.throws(() => encode('x'.repeat(300), 'M'), /too long/);
  });
});
