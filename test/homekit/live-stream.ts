/**
 * A Home app live view for tests: SetupEndpoints and START on one of the camera's stream services
 * through HapCameraClient, SRTP received on loopback, with RTCP keep-alives as the Home app sends.
 */
import assert from 'node:assert/strict';
import { HapCameraClient, newSessionId, type ServiceRef, type StartOptions } from './hap-camera-client.js';
import { newSrtpKeys, SrtpReceiver } from './srtp-receiver.js';

export interface LiveStream {
  id: string;
  service: ServiceRef;
  video: SrtpReceiver;
  audio: SrtpReceiver;
  /** The accessory's end: where the Home app's RTCP, and its microphone (`audio.sendRtp`), go. */
  accessory: { address: string; videoPort: number; audioPort: number };
  startedAt: number;
  end(): Promise<void>;
}

/** SetupEndpoints + START on one of the camera's stream services, with RTCP keep-alives like the Home app. */
export async function startLiveStream(hap: HapCameraClient, service: ServiceRef, options: StartOptions): Promise<LiveStream> {
  const video = await SrtpReceiver.open(newSrtpKeys());
  const audio = await SrtpReceiver.open(newSrtpKeys());
  const id = newSessionId();
  const answer = await hap.setupEndpoints(service, { id, videoPort: video.port, audioPort: audio.port, video: video.keys, audio: audio.keys });
  assert.equal(answer.status, 0, 'SetupEndpoints status: success');
  assert.equal(answer.address, '127.0.0.1');
  video.keepAlive({ address: answer.address, port: answer.videoPort });
  audio.keepAlive({ address: answer.address, port: answer.audioPort });
  const startedAt = performance.now();
  await hap.start(service, id, options);
  let ended = false;
  return {
    id,
    service,
    video,
    audio,
    accessory: { address: answer.address, videoPort: answer.videoPort, audioPort: answer.audioPort },
    startedAt,
    async end() {
      if (ended) return;
      ended = true;
      await hap.end(service, id).catch(() => undefined);
      video.close();
      audio.close();
    },
  };
}
