import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RtspStreamParser, StreamParseError, type StreamItem, type StreamParserLimits } from '../../src/rtsp/stream-parser.js';

function rtp(seq: number, size = 20): Buffer {
  const b = Buffer.alloc(size, 0xab);
  b[0] = 0x80;
  b[1] = 96;
  b.writeUInt16BE(seq, 2);
  return b;
}

function frame(channel: number, data: Buffer): Buffer {
  const h = Buffer.from([0x24, channel, 0, 0]);
  h.writeUInt16BE(data.length, 2);
  return Buffer.concat([h, data]);
}

function parseAll(chunks: Buffer[], limits?: Partial<StreamParserLimits>): StreamItem[] {
  const parser = new RtspStreamParser(limits);
  const out: StreamItem[] = [];
  for (const c of chunks) parser.push(c, (i) => out.push(i));
  return out;
}

function parseError(chunks: Buffer[], limits?: Partial<StreamParserLimits>): StreamParseError {
  try {
    parseAll(chunks, limits);
  } catch (err) {
    assert.ok(err instanceof StreamParseError, `expected StreamParseError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a parse error');
}

/** A readable summary of items, so split runs can be compared with the whole run. */
function summary(items: StreamItem[]): string[] {
  return items.map((i) => {
    if (i.kind === 'interleaved') return `frame ${i.channel} ${i.data.toString('hex')}`;
    if (i.kind === 'response') return `response ${i.status} ${i.reason} cseq=${i.headers.get('cseq')} body=${i.body.toString()}`;
    return `request ${i.method} ${i.uri} cseq=${i.headers.get('cseq')}`;
  });
}

const sdp = 'v=0\r\nm=video 0 RTP/AVP 96\r\n';
const describeResponse = Buffer.from(
  `RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}`,
);

describe('RtspStreamParser', () => {
  it('parses a response with a body', () => {
    const [item] = parseAll([describeResponse]);
    assert.ok(item && item.kind === 'response');
    assert.equal(item.status, 200);
    assert.equal(item.reason, 'OK');
    assert.equal(item.version, 'RTSP/1.0');
    assert.equal(item.headers.get('content-type'), 'application/sdp');
    assert.equal(item.body.toString(), sdp);
  });

  it('gives the same items however the bytes are split (every split point, and byte by byte)', () => {
    const stream = Buffer.concat([
      frame(0, rtp(1)),
      describeResponse,
      frame(1, rtp(2, 64)),
      frame(0, rtp(3, 1400)),
      Buffer.from('RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: 1234;timeout=60\r\n\r\n'),
      frame(2, rtp(4)),
      Buffer.from('OPTIONS * RTSP/1.0\r\nCSeq: 9\r\n\r\n'),
    ]);
    const expected = summary(parseAll([stream]));
    assert.equal(expected.length, 7);
    for (let cut = 1; cut < stream.length; cut++) {
      assert.deepEqual(summary(parseAll([stream.subarray(0, cut), stream.subarray(cut)])), expected, `split at ${cut}`);
    }
    const bytes = [...stream].map((b) => Buffer.from([b]));
    assert.deepEqual(summary(parseAll(bytes)), expected);
  });

  it('reads header names case-insensitively and joins continuation lines', () => {
    const [item] = parseAll([
      Buffer.from(
        'RTSP/1.0 401 Unauthorized\r\ncseq: 4\r\nWWW-AUTHENTICATE: Digest realm="cam",\r\n  nonce="abc"\r\nwww-authenticate: Basic realm="cam"\r\nX-Empty:\r\n\r\n',
      ),
    ]);
    assert.ok(item && item.kind === 'response');
    assert.equal(item.headers.get('CSeq'), '4');
    assert.deepEqual(item.headers.getAll('WWW-Authenticate'), ['Digest realm="cam", nonce="abc"', 'Basic realm="cam"']);
    assert.equal(item.headers.get('x-empty'), '');
    assert.equal(item.reason, 'Unauthorized');
  });

  it('accepts bare LF line ends, a missing reason phrase and stray blank lines between messages', () => {
    const items = parseAll([Buffer.from('RTSP/1.0 200\nCSeq: 1\n\n\r\n\r\nRTSP/1.0 200 OK\r\nCSeq: 2\r\n\r\n')]);
    assert.equal(items.length, 2);
    assert.ok(items[0]!.kind === 'response' && items[0]!.reason === '');
    assert.ok(items[1]!.kind === 'response' && items[1]!.headers.get('cseq') === '2');
  });

  it('parses requests the camera sends to us', () => {
    const [item] = parseAll([Buffer.from('GET_PARAMETER rtsp://cam/stream RTSP/1.0\r\nCSeq: 7\r\nContent-Length: 4\r\n\r\nping')]);
    assert.ok(item && item.kind === 'request');
    assert.equal(item.method, 'GET_PARAMETER');
    assert.equal(item.uri, 'rtsp://cam/stream');
    assert.equal(item.body.toString(), 'ping');
  });

  it('skips empty interleaved frames', () => {
    const items = parseAll([Buffer.from([0x24, 0, 0, 0]), frame(0, rtp(5))]);
    assert.deepEqual(summary(items), [`frame 0 ${rtp(5).toString('hex')}`]);
  });

  it('fails fast on garbage, before any line end arrives', () => {
    const err = parseError([Buffer.from([0x00, 0xff, 0x13, 0x37])]);
    assert.match(err.message, /not RTSP/);
    assert.match(parseError([Buffer.from('hello there, general kenobi\r\n\r\n')]).message, /not RTSP/);
  });

  it('says so when the peer speaks HTTP', () => {
    const err = parseError([Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n')]);
    assert.match(err.message, /HTTP, not RTSP/);
  });

  it('rejects a malformed start line', () => {
    assert.match(parseError([Buffer.from('RTSP/1.0 OK fine\r\n\r\n')]).message, /malformed RTSP start line/);
  });

  it('rejects a header section larger than the limit, without buffering the rest', () => {
    const parser = new RtspStreamParser();
    const head = Buffer.from('RTSP/1.0 200 OK\r\nX-Big: ');
    let failed: unknown;
    let fed = 0;
    try {
      parser.push(head, () => assert.fail('no item expected'));
      const chunk = Buffer.alloc(8192, 0x61);
      for (fed = 0; fed < 1024 * 1024; fed += chunk.length) {
        parser.push(chunk, () => assert.fail('no item expected'));
        assert.ok(parser.bufferedBytes <= 64 * 1024 + chunk.length);
      }
    } catch (err) {
      failed = err;
    }
    assert.ok(failed instanceof StreamParseError);
    assert.match(failed.message, /header section larger than 65536 bytes/);
    assert.ok(fed < 80 * 1024, `stopped after ${fed} bytes`);
    assert.equal(parser.bufferedBytes, 0);
  });

  it('rejects a header section that is complete but too large', () => {
    const big = `RTSP/1.0 200 OK\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`;
    assert.match(parseError([Buffer.from(big)]).message, /larger than 65536/);
  });

  it('rejects too many header lines', () => {
    const lines = Array.from({ length: 300 }, (_, i) => `X-${i}: v`).join('\r\n');
    assert.match(parseError([Buffer.from(`RTSP/1.0 200 OK\r\n${lines}\r\n\r\n`)]).message, /more than 256 header lines/);
  });

  for (const [value, pattern] of [
    ['-5', /invalid Content-Length "-5"/],
    ['abc', /invalid Content-Length "abc"/],
    ['12abc', /invalid Content-Length/],
    ['1e3', /invalid Content-Length/],
    ['99999999999999999999', /invalid Content-Length/],
    ['2000000', /Content-Length 2000000 exceeds the limit/],
  ] as const) {
    it(`rejects Content-Length: ${value}`, () => {
      assert.match(parseError([Buffer.from(`RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: ${value}\r\n\r\n`)]).message, pattern);
    });
  }

  it('rejects conflicting Content-Length headers', () => {
    const err = parseError([Buffer.from('RTSP/1.0 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd')]);
    assert.match(err.message, /conflicting Content-Length/);
  });

  it('rejects an interleaved frame whose content shows the stream is out of sync', () => {
    // The length covers the start of a response: the "RTSP/" bytes are not RTP version 2.
    const bogus = Buffer.concat([Buffer.from([0x24, 0, 0, 8]), Buffer.from('RTSP/1.0 200 OK\r\n\r\n')]);
    assert.match(parseError([bogus]).message, /not RTP\/RTCP: the stream is out of sync/);
    assert.match(parseError([Buffer.from([0x24, 0, 0, 2, 0x80, 0x60])]).message, /not RTP\/RTCP/);
  });

  it('rejects an interleaved frame longer than the configured limit', () => {
    const err = parseError([Buffer.from([0x24, 0, 0xff, 0xff])], { maxFrameBytes: 4096 });
    assert.match(err.message, /claims 65535 bytes \(limit 4096\)/);
  });

  it('holds at most one frame while waiting for a long one', () => {
    const parser = new RtspStreamParser();
    parser.push(Buffer.from([0x24, 0, 0xff, 0xff]), () => assert.fail('incomplete'));
    parser.push(Buffer.alloc(60_000, 0x80), () => assert.fail('incomplete'));
    assert.equal(parser.bufferedBytes, 60_004);
  });

  it('rejects an endless stream of blank lines', () => {
    assert.match(parseError([Buffer.alloc(5000, 0x0a)]).message, /endless blank lines/);
  });

  it('stays failed after an error', () => {
    const parser = new RtspStreamParser();
    assert.throws(() => parser.push(Buffer.from([0x01]), () => undefined), StreamParseError);
    assert.throws(() => parser.push(describeResponse, () => assert.fail('must not parse after failure')), StreamParseError);
  });

  it('parses 20 000 interleaved frames in well under a second', () => {
    const one = frame(0, rtp(1, 1400));
    const stream = Buffer.concat(Array.from({ length: 20_000 }, () => one));
    const chunks: Buffer[] = [];
    for (let i = 0; i < stream.length; i += 65_536) chunks.push(stream.subarray(i, i + 65_536));
    const t0 = performance.now();
    let n = 0;
    const parser = new RtspStreamParser();
    for (const c of chunks) parser.push(c, () => n++);
    const ms = performance.now() - t0;
    assert.equal(n, 20_000);
    assert.ok(ms < 1000, `${ms} ms`);
  });
});
