import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RtspRequestParser, type ClientMessage } from '../../src/restream/request-parser.js';
import { chooseTransport } from '../../src/restream/protocol.js';

const limits = { maxHeaderBytes: 1024, maxBodyBytes: 256, maxHeaderLines: 16 };

function parseAll(...chunks: Array<string | Buffer>): ClientMessage[] {
  const parser = new RtspRequestParser(limits);
  return chunks.flatMap((c) => parser.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c));
}

describe('re-stream request parser', () => {
  const request = 'SET_PARAMETER rtsp://127.0.0.1/cam RTSP/1.0\r\nCSeq: 4\r\nSession: abc\r\nContent-Length: 5\r\n\r\nhello';
  const interleaved = Buffer.from([0x24, 1, 0, 3, 0xaa, 0xbb, 0xcc]);

  it('parses a request with a body, whatever the chunking', () => {
    const whole = Buffer.concat([Buffer.from(request, 'latin1'), interleaved, Buffer.from('OPTIONS * RTSP/1.0\r\nCSeq: 5\r\n\r\n')]);
    for (let cut = 1; cut < whole.length; cut++) {
      const messages = parseAll(whole.subarray(0, cut), whole.subarray(cut));
      assert.equal(messages.length, 3, `cut at ${cut}`);
      const [first, second, third] = messages;
      assert.equal(first?.type, 'request');
      if (first?.type === 'request') {
        assert.equal(first.request.method, 'SET_PARAMETER');
        assert.equal(first.request.uri, 'rtsp://127.0.0.1/cam');
        assert.equal(first.request.headers.get('session'), 'abc');
        assert.equal(first.request.body.toString(), 'hello');
      }
      assert.deepEqual(second, { type: 'interleaved', channel: 1, data: Buffer.from([0xaa, 0xbb, 0xcc]) });
      assert.equal(third?.type === 'request' && third.request.headers.get('cseq'), '5');
    }
  });

  it('folds continuation lines, lower-cases names, tolerates bare LF and stray CRLFs', () => {
    const [message] = parseAll('\r\n\r\nOPTIONS * RTSP/1.0\nCSeq: 1\nUser-Agent: a\n  b\n\n');
    assert.equal(message?.type, 'request');
    if (message?.type === 'request') assert.equal(message.request.headers.get('user-agent'), 'a b');
  });

  it('rejects malformed input with a status, the CSeq when known, and then parses nothing more', () => {
    const cases: Array<[string, number, string | undefined]> = [
      ['GARBAGE\r\n\r\n', 400, undefined],
      ['OPTIONS * RTSP/1.0\r\n\r\n', 400, undefined],
      ['OPTIONS * RTSP/1.0\r\nCSeq: x\r\n\r\n', 400, undefined],
      ['OPTIONS * RTSP/1.0\r\nCSeq: 3\r\nContent-Length: -1\r\n\r\n', 400, '3'],
      ['OPTIONS * RTSP/1.0\r\nCSeq: 3\r\nContent-Length: 1e3\r\n\r\n', 400, '3'],
      ['OPTIONS * RTSP/1.0\r\nCSeq: 3\r\nContent-Length: 257\r\n\r\n', 413, '3'],
      ['OPTIONS * RTSP/2.0\r\nCSeq: 3\r\n\r\n', 505, '3'],
      ['OPTIONS  * RTSP/1.0\r\nCSeq: 3\r\n\r\n', 400, '3'],
      ['OPTIONS * RTSP/1.0\r\nCSeq: 3\r\nBad Header: x\r\n\r\n', 400, '3'],
      [`OPTIONS * RTSP/1.0\r\nCSeq: 3\r\n${'X: y\r\n'.repeat(20)}\r\n`, 400, undefined],
    ];
    for (const [input, status, cseq] of cases) {
      const parser = new RtspRequestParser(limits);
      const messages = parser.push(Buffer.from(input, 'latin1'));
      assert.equal(messages.length, 1, input);
      const message = messages[0]!;
      assert.equal(message.type, 'error', input);
      if (message.type === 'error') {
        assert.equal(message.status, status, input);
        assert.equal(message.cseq, cseq, input);
      }
      assert.deepEqual(parser.push(Buffer.from('OPTIONS * RTSP/1.0\r\nCSeq: 9\r\n\r\n')), []);
    }
  });

  it('never buffers more than the header limit: a 1 MB header fails as soon as it is too big', () => {
    const parser = new RtspRequestParser(limits);
    assert.deepEqual(parser.push(Buffer.from('OPTIONS * RTSP/1.0\r\nCSeq: 8\r\nX: ')), []);
    let result: ClientMessage[] = [];
    let fed = 0;
    while (result.length === 0 && fed < 1024 * 1024) {
      result = parser.push(Buffer.alloc(100, 0x61));
      fed += 100;
    }
    assert.ok(fed <= limits.maxHeaderBytes + 100, `failed after ${fed} bytes`);
    assert.deepEqual(result, [{ type: 'error', status: 400, reason: 'Request header too large', cseq: '8' }]);
    assert.equal(parser.pendingBytes, 0);
  });

  it('reports partial input through pendingBytes', () => {
    const parser = new RtspRequestParser(limits);
    parser.push(Buffer.from('OPTIONS * RTSP'));
    assert.equal(parser.pendingBytes, 14);
    parser.push(Buffer.from('/1.0\r\nCSeq: 1\r\n\r\n'));
    assert.equal(parser.pendingBytes, 0);
  });
});

describe('re-stream Transport header', () => {
  it('picks the first unicast transport it serves', () => {
    assert.deepEqual(chooseTransport('RTP/AVP/TCP;unicast;interleaved=4-5', true), { type: 'tcp', channels: [4, 5] });
    assert.deepEqual(chooseTransport('RTP/AVP/TCP;unicast', true), { type: 'tcp' });
    assert.deepEqual(chooseTransport('RTP/AVP;unicast;client_port=5000-5001', true), { type: 'udp', ports: [5000, 5001] });
    assert.deepEqual(chooseTransport('RTP/AVP/UDP;unicast;client_port=5000', true), { type: 'udp', ports: [5000, 5001] });
    assert.deepEqual(chooseTransport('RTP/AVP;multicast, RTP/AVP/TCP;interleaved=0-1', true), { type: 'tcp', channels: [0, 1] });
    assert.deepEqual(chooseTransport('RTP/AVP;unicast;client_port=5000-5001, RTP/AVP/TCP;interleaved=0-1', false), { type: 'tcp', channels: [0, 1] });
  });

  it('returns nothing it cannot serve (the server answers 461)', () => {
    assert.equal(chooseTransport('RTP/AVP;unicast;client_port=5000-5001', false), undefined);
    assert.equal(chooseTransport('RTP/AVP;multicast;port=3456-3457', true), undefined);
    assert.equal(chooseTransport('RAW/RAW/UDP;unicast', true), undefined);
    assert.equal(chooseTransport('RTP/AVP;unicast;client_port=0-1', true), undefined);
    assert.equal(chooseTransport('RTP/AVP;unicast;client_port=70000-70001', true), undefined);
    assert.equal(chooseTransport('', true), undefined);
  });

  it('ignores a bad interleaved value rather than failing', () => {
    assert.deepEqual(chooseTransport('RTP/AVP/TCP;interleaved=300-301', true), { type: 'tcp' });
  });
});
