/**
 * Viewer admission. One limiter is shared by the WebSocket and WHEP paths so that a camera's limit
 * counts every viewer, however it came in. A slot is taken before any peer connection is built (so
 * a flood costs nothing) and given back exactly once when the viewer ends.
 *
 * A slot is pending until its viewer's ICE and DTLS connect (`connected()`). Pending slots cost an
 * attacker nothing (an offer that never completes ICE) but cost the server a peer connection doing
 * ICE checks and a DTLS handshake (CPU for the key exchange and signature, memory and UDP sockets),
 * and each holds one of the camera's places until the viewer's connect timeout reaps it
 * (`CONNECT_TIMEOUT_MS` in viewer-peer.ts). So each principal and each client address may hold only
 * a budget of them at once (web.maxConnectingViews, default 4): offers that never connect cannot
 * fill a camera's slots and lock the family out, and a connected viewer is never displaced. The
 * budget is a setting because a connect storm from one address (many screens behind one router, a
 * bench of 50 viewers joining at once) is legitimate; whatever it is set to, it is clamped to
 * `CONNECTING_LIMIT_CEILING`. A guarded caller's pending views also count against its live views
 * limits (web/auth/peer-guard.ts), so the budget never lets anyone hold more views than those allow.
 */
import { clientKey } from '../access/client-address.js';
import { CONNECTING_LIMIT_CEILING, WEB_DEFAULT_CONNECTING_LIMIT } from '../config/view-limits.js';

export interface ViewerLimitSettings {
  /** Default maximum viewers per camera (default 20). */
  maxViewersPerCamera?: number;
  /** Per-camera overrides, by camera id. */
  perCamera?: Readonly<Record<string, number>>;
  /** Maximum viewers over all cameras (default unlimited). */
  maxViewersTotal?: number;
  /**
   * Unconnected viewers one principal, and one address, may have at once: web.maxConnectingViews
   * (default `WEB_DEFAULT_CONNECTING_LIMIT`, 4; never more than `CONNECTING_LIMIT_CEILING`).
   */
  maxPendingPerOwner?: number;
}

export const DEFAULT_MAX_VIEWERS_PER_CAMERA = 20;

/** Who asks for a slot: the principal's name and the client address (IPv6 counted per /64). */
export interface SlotOwner {
  principal: string;
  address: string;
}

/** A slot: call it to release (idempotent); `connected()` once its viewer connected. */
export type ViewerSlot = (() => void) & { connected(): void };

export type Admission = { slot: ViewerSlot } | { refused: 'camera-full' | 'too-many-pending' };

export class ViewerLimiter {
  private readonly counts = new Map<string, number>();
  private readonly pendingByPrincipal = new Map<string, number>();
  private readonly pendingByAddress = new Map<string, number>();
  private total = 0;

  constructor(private readonly settings: ViewerLimitSettings = {}) {}

  limitFor(cameraId: string): number {
    return this.settings.perCamera?.[cameraId] ?? this.settings.maxViewersPerCamera ?? DEFAULT_MAX_VIEWERS_PER_CAMERA;
  }

  count(cameraId: string): number {
    return this.counts.get(cameraId) ?? 0;
  }

  get totalCount(): number {
    return this.total;
  }

  /** How many unconnected viewers one principal, and one address, may have at once (the setting, clamped). */
  get pendingLimit(): number {
    return Math.min(this.settings.maxPendingPerOwner ?? WEB_DEFAULT_CONNECTING_LIMIT, CONNECTING_LIMIT_CEILING);
  }

  /** Unconnected slots of this owner: the more of its principal and its address. */
  pendingOf(owner: SlotOwner): number {
    return Math.max(this.pendingByPrincipal.get(owner.principal) ?? 0, this.pendingByAddress.get(clientKey(owner.address)) ?? 0);
  }

  /** Takes a slot; returns its release function (idempotent), or undefined when refused. */
  tryAcquire(cameraId: string, owner?: SlotOwner): ViewerSlot | undefined {
    const admission = this.admit(cameraId, owner);
    return 'slot' in admission ? admission.slot : undefined;
  }

  /** Takes a slot, or says why not. Without an owner no pending budget applies (tests, benches). */
  admit(cameraId: string, owner?: SlotOwner): Admission {
    const current = this.count(cameraId);
    const address = owner ? clientKey(owner.address) : undefined;
    if (owner && this.pendingOf(owner) >= this.pendingLimit) return { refused: 'too-many-pending' };
    if (current >= this.limitFor(cameraId)) return { refused: 'camera-full' };
    if (this.settings.maxViewersTotal !== undefined && this.total >= this.settings.maxViewersTotal) return { refused: 'camera-full' };
    this.counts.set(cameraId, current + 1);
    this.total++;
    let pending = owner !== undefined;
    if (owner) {
      bump(this.pendingByPrincipal, owner.principal, 1);
      bump(this.pendingByAddress, address!, 1);
    }
    const settle = (): void => {
      if (!pending || !owner) return;
      pending = false;
      bump(this.pendingByPrincipal, owner.principal, -1);
      bump(this.pendingByAddress, address!, -1);
    };
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      settle();
      this.total--;
      const left = this.count(cameraId) - 1;
      if (left <= 0) this.counts.delete(cameraId);
      else this.counts.set(cameraId, left);
    };
    return { slot: Object.assign(release, { connected: settle }) };
  }
}

function bump(map: Map<string, number>, key: string, delta: number): void {
  const next = (map.get(key) ?? 0) + delta;
  if (next <= 0) map.delete(key);
  else map.set(key, next);
}
