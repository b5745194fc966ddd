// Issue 12, item 6: a WHEP offer without a DTLS fingerprint can never connect, so it is refused
// with 400 instead of holding a viewer slot until the connect timeout.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../src/util/logger.js';
import { LOOPBACK_ICE_SETTINGS } from '../../src/webrtc/ice-config.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import { createWhepHandler, offerHasFingerprint, type WhepEndpoint } from '../../src/webrtc/whep.js';
import type { CallerContext } from '../../src/web/types.js';
import { cleanupAll } from '../helpers/processes.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { EVERYONE, registryOf } from './harness.js';

after(cleanupAll);

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM_OFFER = readFileSync(join(here, 'fixtures', 'chromium-recvonly-offer.sdp'), 'utf8');
const caller: CallerContext = { principal: EVERYONE, remoteAddress: '127.0.0.1', request: new IncomingMessage(new Socket()), log: silentLogger };

describe('WHEP offer without DTLS fingerprint', () => {
  let source: SyntheticSource;
  let whep: WhepEndpoint;
  let limits: ViewerLimiter;

  before(async () => {
    source = await SyntheticSource.create({ id: 'cam1', gop: 50 });
    limits = new ViewerLimiter({ maxViewersPerCamera: 10 });
    whep = createWhepHandler({ registry: registryOf([source]), limits, ice: LOOPBACK_ICE_SETTINGS });
  });
  after(async () => {
    await whep.closeAll();
    source.close();
  });

  test('is refused with 400 and a message naming the fingerprint; a complete offer still gets 201', async () => {
    const stripped = CHROMIUM_OFFER.replace(/^a=fingerprint:[^\r\n]*\r?\n/gm, '');
    assert.ok(!stripped.includes('a=fingerprint'));
    const refused = await whep.handlePost('cam1', stripped, caller);
    assert.equal(refused.status, 400);
    assert.match(String(refused.body), /DTLS fingerprint/);
    assert.equal(whep.sessionCount, 0);
    assert.equal(limits.count('cam1'), 0, 'no viewer slot is taken');

    // Only one of two sections carries it: still refused.
    let seen = 0;
    const half = CHROMIUM_OFFER.replace(/^a=fingerprint:[^\r\n]*\r?\n/gm, (line) => (seen++ === 0 ? line : ''));
    assert.equal(offerHasFingerprint(half), false);
    assert.equal((await whep.handlePost('cam1', half, caller)).status, 400);

    const accepted = await whep.handlePost('cam1', CHROMIUM_OFFER, caller);
    assert.equal(accepted.status, 201);
    assert.equal(whep.sessionCount, 1);
  });
});
