/** The ONVIF API the platform uses: discovery, device query, snapshots and motion. */
export { discoverCameras, reportUnconfiguredCameras, defaultProbeInterfaces, WS_DISCOVERY_MULTICAST } from './discovery.js';
export type { DiscoveredCamera, DiscoveryOptions, ProbeTarget } from './discovery.js';
export { connectOnvifDevice, cleanInfoValue, chooseProfiles, rewriteStreamUri } from './device.js';
export type * from './device-types.js';
export { OnvifError, isOnvifError } from './errors.js';
export type { OnvifErrorCode } from './errors.js';
export { OnvifMotionEvents, classifyTopic, eventFromNotification, isDoorbellPress, isMotionTopic, motionFromNotification, normalizeTopic, parseNotificationMessages } from './events.js';
export type { MotionEvent, OnvifEvent, OnvifEventKind, OnvifMotionEventsEvents, OnvifMotionEventsOptions } from './events.js';
export { MotionState } from './motion.js';
export type { MotionStateEvents, MotionStateOptions } from './motion.js';
export { retryOnvif } from './retry.js';
export type { OnvifRetryOptions } from './retry.js';
export { PtzController, PtzRefusedError, discoverPtz, OnvifPtz } from './ptz.js';
export type { PtzCapabilities, PtzClient, PtzControllerOptions, PtzPreset, PtzRefusalReason, PtzState, PtzVector, PtzViewer } from './ptz.js';
