import { spawn } from 'node:child_process';

export interface GrayImageStats {
  width: number;
  height: number;
  mean: number;
  variance: number;
}

/**
 * Decodes a PNG or JPEG with ffmpeg into 8-bit gray pixels and measures them, so a test can tell a
 * real picture (high variance) from a blank, black or single-colour one.
 */
export async function grayImageStats(image: Buffer, width = 160, height = 90): Promise<GrayImageStats> {
  const pixels = await new Promise<Buffer>((resolve, reject) => {
    const ff = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', 'pipe:0',
      '-vf', `scale=${width}:${height}`, '-pix_fmt', 'gray', '-f', 'rawvideo', 'pipe:1'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    ff.stdout.on('data', (d: Buffer) => out.push(d));
    ff.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    ff.on('error', reject);
    ff.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`ffmpeg could not decode the image: ${err.trim()}`))));
    ff.stdin.end(image);
  });
  if (pixels.length !== width * height) throw new Error(`expected ${width * height} gray pixels, got ${pixels.length}`);
  let sum = 0;
  for (const p of pixels) sum += p;
  const mean = sum / pixels.length;
  let squares = 0;
  for (const p of pixels) squares += (p - mean) ** 2;
  return { width, height, mean, variance: squares / pixels.length };
}
