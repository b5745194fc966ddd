/**
 * RTSP header fields. Names compare case-insensitively (cameras write `Cseq`, `CSeq`, `CSEQ`), and
 * a name may repeat: several `WWW-Authenticate` challenges are common.
 */
export class RtspHeaders {
  private readonly fields = new Map<string, string[]>();

  constructor(init?: Iterable<readonly [string, string]>) {
    if (init) for (const [name, value] of init) this.append(name, value);
  }

  append(name: string, value: string): void {
    const key = name.trim().toLowerCase();
    const list = this.fields.get(key);
    if (list) list.push(value);
    else this.fields.set(key, [value]);
  }

  /** The first value of a field, or undefined. */
  get(name: string): string | undefined {
    return this.fields.get(name.toLowerCase())?.[0];
  }

  getAll(name: string): string[] {
    return [...(this.fields.get(name.toLowerCase()) ?? [])];
  }

  has(name: string): boolean {
    return this.fields.has(name.toLowerCase());
  }

  /** Number of distinct field names. */
  get size(): number {
    return this.fields.size;
  }

  *entries(): IterableIterator<[string, string]> {
    for (const [name, values] of this.fields) for (const v of values) yield [name, v];
  }
}
