/**
 * Reading an Annex-B byte stream (start code, NAL unit, start code, ...) as it arrives from a pipe,
 * where chunk boundaries fall anywhere: inside a start code, inside a unit, between units. A unit
 * is complete only once the next start code has been seen, so the newest one is held back until
 * then (or until `flush()` at the end of the stream).
 *
 * Start codes are 00 00 01, or 00 00 00 01: a zero byte before a 3-byte start code belongs to the
 * start code, not to the unit before it. A NAL unit never ends in a zero byte (its RBSP ends with
 * the stop bit), so zero bytes at a unit's end are the next start code's, and are dropped.
 */

export class AnnexBSplitter {
  /** Bytes not yet returned: from the newest start code (or the stream's first byte) on. */
  private pending: Buffer = Buffer.alloc(0);
  /** Whether `pending` begins inside a unit (a start code was seen before it). */
  private inUnit = false;
  /** Where scanning resumes in `pending`: no start code begins before it. */
  private scanFrom = 0;
  /** Units held at once are bounded by the caller's stream; this bounds one unit's size. */
  constructor(private readonly maxUnitBytes = 16 * 1024 * 1024) {}

  /** Every unit that this chunk completed, in order (without start codes). */
  push(chunk: Buffer): Buffer[] {
    const data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const units: Buffer[] = [];
    let unitStart = this.inUnit ? 0 : -1;
    let i = this.scanFrom;
    // The last 2 bytes may be the start of a start code that the next chunk completes.
    while (i + 2 < data.length) {
      if (data[i + 2]! > 1) {
        i += 3;
        continue;
      }
      if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
        if (unitStart >= 0) this.emit(units, data.subarray(unitStart, i));
        i += 3;
        unitStart = i;
        continue;
      }
      i++;
    }
    if (unitStart >= 0) {
      this.pending = Buffer.from(data.subarray(unitStart));
      this.inUnit = true;
      // Every position up to the last two bytes was looked at: no start code begins there.
      this.scanFrom = Math.max(0, this.pending.length - 2);
    } else {
      // No start code yet: keep only the tail that could begin one.
      this.pending = Buffer.from(data.subarray(Math.max(0, data.length - 2)));
      this.inUnit = false;
      this.scanFrom = 0;
    }
    if (this.pending.length > this.maxUnitBytes) {
      throw new Error(`Annex-B: a NAL unit is over ${this.maxUnitBytes} bytes without a start code after it`);
    }
    return units;
  }

  /** The end of the stream: the unit held back is complete. */
  flush(): Buffer[] {
    const units: Buffer[] = [];
    if (this.inUnit) this.emit(units, this.pending);
    this.pending = Buffer.alloc(0);
    this.inUnit = false;
    this.scanFrom = 0;
    return units;
  }

  private emit(units: Buffer[], unit: Buffer): void {
    let end = unit.length;
    while (end > 0 && unit[end - 1] === 0) end--;
    if (end > 0) units.push(Buffer.from(unit.subarray(0, end)));
  }
}
