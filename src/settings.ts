/** The names Homebridge knows this plugin by. `PLATFORM_NAME` is the `platform` value in config.json. */
export const PLATFORM_NAME = 'WebRTCCameras';
export const PLUGIN_NAME = 'homebridge-webrtc-cameras';
