import type { MediaFrame } from './types.js';

/** Encoded bytes of a frame: `byteLength` when the Source set it, otherwise summed. */
export function frameByteLength(frame: MediaFrame): number {
  if (frame.byteLength !== undefined) return frame.byteLength;
  let bytes = 0;
  for (const unit of frame.units) bytes += unit.length;
  return bytes;
}
