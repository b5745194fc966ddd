/**
 * The ffmpeg command line of a camera's motion detector (src/motion/): the loopback re-stream in,
 * small grey pictures out on stdout, a few a second. Every flag says why.
 */
import { restreamTrackArgs } from './input-probe.js';

export const MOTION_PICTURE_WIDTH = 160;
export const MOTION_PICTURE_HEIGHT = 90;
/** Pictures a second: motion lasts longer than half a second, and each picture costs a comparison. */
export const MOTION_PICTURES_PER_SECOND = 2;

export interface MotionArgs {
  /** The camera's loopback re-stream (rtsp://127.0.0.1:<port>/<token>/<id>). */
  inputUrl: string;
  debug?: boolean;
}

export function videoMotionArgs(input: MotionArgs): string[] {
  return [
    '-hide_banner',
    '-nostdin', // never read the terminal; the plugin stops ffmpeg with signals
    '-loglevel', input.debug ? 'level+verbose' : 'level+warning', // level tags let the diagnosis find the errors
    ...restreamTrackArgs('video', 'fast'), // the picture only (the sound is not looked at); the re-stream starts with a keyframe
    '-threads', '1', // one decoding thread: a background task on a Raspberry Pi must not take every core
    '-i', input.inputUrl,
    '-map', '0:v:0',
    // A few pictures a second, small and grey: what the comparison needs, and little to copy.
    '-vf', `fps=${MOTION_PICTURES_PER_SECOND},scale=${MOTION_PICTURE_WIDTH}:${MOTION_PICTURE_HEIGHT},format=gray`,
    '-f', 'rawvideo', // bare pixels, one picture after another, each exactly 160x90 bytes
    'pipe:1',
  ];
}
