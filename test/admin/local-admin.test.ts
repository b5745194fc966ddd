import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createLocalAdmin, isLocalAdmin, type AdminFile } from '../../src/admin/local-admin.js';

function request(authorization: string | undefined, remoteAddress = '127.0.0.1', headers: Record<string, string> = {}): IncomingMessage {
  return { headers: { ...(authorization ? { authorization } : {}), ...headers }, socket: { remoteAddress } } as unknown as IncomingMessage;
}

describe('local admin secret and preview tokens', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('admin token: this process only, loopback only, and admin.json goes away at close', async () => {
    const storage = await mkdtemp(join(tmpdir(), 'wrc-local-admin-'));
    dirs.push(storage);
    const admin = await createLocalAdmin({ storagePath: storage });
    await admin.publish(8090, true);
    const file = join(storage, 'webrtc-cameras', 'admin.json');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const { secret, port, tls } = JSON.parse(await readFile(file, 'utf8')) as AdminFile;
    assert.deepEqual([port, tls], [8090, true]);
    assert.ok(isLocalAdmin(admin.authorize(request(`Bearer wrcadmin.${secret}`)) as never));
    assert.equal(admin.authorize(request(`Bearer wrcadmin.${secret}`, '192.168.1.5')), undefined);
    assert.equal(admin.authorize(request(`Bearer wrcadmin.${secret}`, '::ffff:127.0.0.1', { via: '1.1 nginx' })), undefined);
    assert.equal(admin.authorize(request(`Bearer wrcadmin.${secret}x`)), undefined);
    assert.equal(admin.authorize(request('Bearer wrc1.abc')), 'not-mine', 'share-link tokens are for access control');
    assert.equal(admin.authorize(request(undefined)), 'not-mine');
    // A second process (restart) has another secret; the first one's token stops working there.
    const next = await createLocalAdmin({ storagePath: storage });
    assert.equal(next.authorize(request(`Bearer wrcadmin.${secret}`)), undefined);
    await admin.close();
    await assert.rejects(stat(file));
  });

  it('preview token: one camera, expires, cannot be stretched or moved to another camera', async () => {
    const storage = await mkdtemp(join(tmpdir(), 'wrc-local-admin-'));
    dirs.push(storage);
    let now = 1_700_000_000_000;
    const admin = await createLocalAdmin({ storagePath: storage, now: () => now });
    const { token, expiresAt } = admin.mintPreview('porch', 10 * 60_000);
    assert.ok(expiresAt - now <= 300_000, 'at most 5 minutes whatever is asked');
    const principal = admin.authorize(request(`Bearer ${token}`, '10.0.0.8'));
    assert.ok(principal && principal !== 'not-mine');
    assert.deepEqual(principal.cameras, ['porch']);
    assert.equal(principal.admin, false);
    assert.equal(admin.authorize(request(`Bearer ${token.replace('.porch.', '.garden.')}`)), undefined);
    const [prefix, camera, , mac] = token.split('.');
    const later = (expiresAt / 1000 + 3600).toString(36);
    assert.equal(admin.authorize(request(`Bearer ${prefix}.${camera}.${later}.${mac}`)), undefined);
    now = expiresAt;
    assert.equal(admin.authorize(request(`Bearer ${token}`)), undefined, 'expired');
    // The UI page's origin may use bearer WHEP cross-origin while its preview token lives, no longer.
    now = 1_700_000_000_000;
    const minted = admin.mintPreview('porch', 60_000, 'http://127.0.0.1:8581');
    assert.equal(admin.allowsOrigin('http://127.0.0.1:8581'), true);
    assert.equal(admin.allowsOrigin('http://127.0.0.1:8582'), false);
    now = minted.expiresAt;
    assert.equal(admin.allowsOrigin('http://127.0.0.1:8581'), false);
  });
});
