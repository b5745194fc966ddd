/**
 * Viewer admission. One limiter is shared by the WebSocket and WHEP paths so that a camera's limit
 * counts every viewer, however it came in. A slot is taken before any peer connection is built (so
 * a flood costs nothing) and given back exactly once when the viewer ends.
 *
 * A slot is pending until its viewer's ICE and DTLS connect (`connected()`). Pending slots are cheap
 * to make and cost an attacker nothing (an offer that never completes ICE), so each principal and
 * each client address may hold only a few at once: offers that never connect cannot fill a camera's
 * slots and lock the family out. Pending viewers are reaped by the viewer's connect timeout
 * (`CONNECT_TIMEOUT_MS` in viewer-peer.ts); a connected viewer is never displaced.
 */
import { clientKey } from '../access/client-address.js';

export interface ViewerLimitSettings {
  /** Default maximum viewers per camera (default 20). */
  maxViewersPerCamera?: number;
  /** Per-camera overrides, by camera id. */
  perCamera?: Readonly<Record<string, number>>;
  /** Maximum viewers over all cameras (default unlimited). */
  maxViewersTotal?: number;
  /** Unconnected viewers one principal, and one address, may have at once (default 4). */
  maxPendingPerOwner?: number;
}

export const DEFAULT_MAX_VIEWERS_PER_CAMERA = 20;
/**
 * A page opens one viewer at a time per camera tile and a family shares an address; 4 leaves room
 * for a few tabs connecting at once while keeping most of a 10-viewer camera for connected people.
 */
export const DEFAULT_MAX_PENDING_PER_OWNER = 4;

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
    const budget = this.settings.maxPendingPerOwner ?? DEFAULT_MAX_PENDING_PER_OWNER;
    if (owner && this.pendingOf(owner) >= budget) return { refused: 'too-many-pending' };
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
