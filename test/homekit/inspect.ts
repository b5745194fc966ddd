/**
 * What the HomeKit tests look at from outside: the process tree of a Homebridge (is any ffmpeg
 * left?), and a JPEG's size and how much its pixels vary (a blank picture does not).
 */
import { readdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { probeImage } from '../helpers/onvif-responder.js';
import { readProcStat } from '../helpers/proc-stat.js';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  command: string;
}

function readProcess(pid: number): ProcessInfo | undefined {
  const stat = readProcStat(pid);
  return stat ? { pid, ppid: stat.parent, command: stat.command } : undefined; // undefined: exited meanwhile
}

/** Every live descendant of `root` (children, grandchildren: a child bridge's ffmpeg too). */
export function descendants(root: number): ProcessInfo[] {
  const all = readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map((name) => readProcess(Number(name))).filter((p): p is ProcessInfo => !!p);
  const byParent = new Map<number, ProcessInfo[]>();
  for (const p of all) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const out: ProcessInfo[] = [];
  const queue = [root];
  while (queue.length) {
    for (const child of byParent.get(queue.shift()!) ?? []) {
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

export function ffmpegDescendants(root: number): ProcessInfo[] {
  return descendants(root).filter((p) => p.command === 'ffmpeg');
}

export interface ImageCheck {
  codec: string;
  width: number;
  height: number;
  /** Variance of the 8-bit luma values: 0 for a flat picture; a test pattern is in the thousands. */
  variance: number;
}

/** Decodes a JPEG to raw 8-bit gray with ffmpeg and measures it. */
export async function checkImage(jpeg: Buffer): Promise<ImageCheck> {
  const info = await probeImage(jpeg);
  const gray = await new Promise<Buffer>((resolve, reject) => {
    const child = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'image2pipe', '-i', 'pipe:0', '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1']);
    const chunks: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`ffmpeg could not decode the JPEG: ${err}`))));
    child.stdin.end(jpeg);
  });
  let sum = 0;
  for (const v of gray) sum += v;
  const mean = sum / Math.max(1, gray.length);
  let squares = 0;
  for (const v of gray) squares += (v - mean) ** 2;
  return { ...info, variance: squares / Math.max(1, gray.length) };
}
