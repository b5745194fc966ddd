/**
 * The custom UI's server, run by homebridge-config-ui-x as a child process for a signed-in UI
 * administrator only (its settings-ui socket is behind the UI's admin guard). It forwards the
 * page's requests to the plugin (handlers.ts); errors reach the page as their message.
 */
import { HomebridgePluginUiServer, RequestError } from '@homebridge/plugin-ui-utils';
import { createUiHandlers } from './handlers.js';

class WebRtcCamerasUiServer extends HomebridgePluginUiServer {
  constructor() {
    super();
    const storagePath = this.homebridgeStoragePath;
    if (!storagePath) throw new Error('HOMEBRIDGE_STORAGE_PATH is not set: this script runs inside the Homebridge UI only');
    for (const [path, handler] of Object.entries(createUiHandlers({ storagePath }))) {
      this.onRequest(path, async (body: unknown) => {
        try {
          return await handler(body);
        } catch (error) {
          throw new RequestError(error instanceof Error ? error.message : String(error), { status: 400 });
        }
      });
    }
    this.ready();
  }
}

new WebRtcCamerasUiServer();
