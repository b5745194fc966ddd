import type { API } from 'homebridge';
import { WebRTCCamerasPlatform } from './platform.js';
import { PLATFORM_NAME } from './settings.js';

/**
 * Homebridge's entry point. Only a type is imported from `homebridge`: a value import would make
 * the plugin fail to load on installs that keep Homebridge in a separate node_modules tree.
 */
export default (api: API): void => {
  api.registerPlatform(PLATFORM_NAME, WebRTCCamerasPlatform);
};
