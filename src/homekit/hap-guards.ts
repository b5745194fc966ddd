/**
 * A guard around a crash in hap-nodejs (2.2.3, `DataStreamConnection.onSocketData` in
 * lib/datastream/DataStreamServer.js). A HomeKit Data Stream connection whose first frame does not
 * decrypt with any prepared session's keys is closed, but the handler then goes on to decode that
 * frame and throws "Reached illegal state" from the socket's 'data' listener: an uncaught exception
 * that ends the whole Homebridge process. Anyone who can reach the data-stream port can send such a
 * frame (21 bytes), and the port listens on every interface while a home hub holds a HomeKit Secure
 * Video data stream open, which is the normal state with recording on.
 *
 * Until hap-nodejs fixes it, the handler is wrapped: a throw closes that one connection (as hap-nodejs
 * meant to) and is logged at debug, so a stranger's frame costs nothing. It is installed once per
 * hap-nodejs module (the one Homebridge gives plugins), only when a camera offers HomeKit Secure
 * Video, and only if the handler is where this version has it; otherwise nothing is touched.
 */
import type { HAP } from 'homebridge';
import type { Logger } from '../util/logger.js';

const GUARDED = Symbol.for('homebridge-webrtc-cameras.data-stream-guard');

interface DataStreamConnectionPrototype {
  onSocketData?: (this: DataStreamConnectionPrototype, data: Buffer) => void;
  close?: (this: DataStreamConnectionPrototype) => void;
  [GUARDED]?: true;
}

/** Wraps hap-nodejs's data-stream socket handler so one bad frame cannot end the process; true when the guard is in place. */
export function guardDataStreamConnections(hap: HAP, log: Logger): boolean {
  const prototype = (hap as unknown as { DataStreamConnection?: { prototype?: DataStreamConnectionPrototype } }).DataStreamConnection?.prototype;
  const original = prototype?.onSocketData;
  if (!prototype || typeof original !== 'function') return false;
  if (prototype[GUARDED]) return true;
  // The constructor binds `this.onSocketData` to the socket, so connections made from now on use this.
  prototype.onSocketData = function guardedOnSocketData(this: DataStreamConnectionPrototype, data: Buffer): void {
    try {
      original.call(this, data);
    } catch (error) {
      log.debug(`HomeKit Data Stream: a connection sent what hap-nodejs could not handle (${error instanceof Error ? error.message : String(error)}); it is closed.`);
      try {
        this.close?.();
      } catch {
        // Already closing: nothing more to end.
      }
    }
  };
  prototype[GUARDED] = true;
  return true;
}
