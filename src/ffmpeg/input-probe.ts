/**
 * How much of the loopback re-stream ffmpeg reads before it starts writing, for every ffmpeg that
 * reads it (HomeKit streams, the VP8 variant). The fast probe gives the quickest first packet; the
 * thorough one is the retry when the fast probe ended before ffmpeg knew the picture size
 * ("dimensions not set" on a busy machine): `RestreamFfmpeg` in ffmpeg-process.ts decides that.
 */

/** 'fast': probe 0.1 s; 'thorough': probe up to 1 s. */
export type InputProbe = 'fast' | 'thorough';

/** The input options that set the probe, for before `-i`. */
export function inputProbeArgs(probe: InputProbe): string[] {
  return probe === 'thorough'
    ? [
      '-probesize', '1000000', // the retry: room for a whole keyframe and the frames around it
      '-analyzeduration', '1000000', // 1 s: the video's size is known by then even on a busy machine
    ]
    : [
      '-probesize', '32768', // the re-stream starts with parameter sets and a keyframe: little to probe
      '-analyzeduration', '100000', // 0.1 s of media finds both tracks; more only delays the first frame
    ];
}

/**
 * How an ffmpeg reads one kind of the camera's loopback re-stream (`-i` and its URL follow): over
 * TCP, setting up only the tracks it uses (the others are never sent to it), and giving up when the
 * re-stream goes silent, so no ffmpeg outlives its camera.
 */
export function restreamTrackArgs(media: 'video' | 'audio', probe: InputProbe): string[] {
  return [
    ...inputProbeArgs(probe),
    '-rtsp_transport', 'tcp', // loopback TCP: no loss, no reordering
    '-allowed_media_types', media, // set up this kind only: nothing else is decoded or even sent
    '-timeout', '10000000', // give up when the re-stream is silent for 10 s (µs): no orphan ffmpeg
  ];
}
