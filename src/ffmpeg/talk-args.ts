/**
 * The ffmpeg command line of a talker's voice on its way to a camera's speaker (src/talk/): the
 * browser's Opus, re-paged into Ogg by the plugin, on stdin; G.711 at 8 kHz mono, the only sound
 * ONVIF back-channels are required to take, as bare bytes on stdout, which the plugin cuts into
 * 20 ms RTP packets. Every flag says why.
 */

export interface TalkArgs {
  /** The camera's back-channel codec. */
  encoding: 'PCMU' | 'PCMA';
  /** The `ffmpeg.debug` setting: verbose log lines. */
  debug?: boolean;
}

export function talkArgs(input: TalkArgs): string[] {
  return [
    '-hide_banner',
    '-nostdin', // stdin carries the voice: ffmpeg must never read it as keyboard commands
    '-loglevel', input.debug ? 'level+verbose' : 'level+warning', // level tags let the diagnosis find the errors
    '-fflags', '+nobuffer', // a voice is live: no input buffering beyond what decoding needs
    '-probesize', '32', // the OpusHead page says everything: no waiting for more before decoding...
    '-analyzeduration', '0', // ...nor for a duration estimate
    '-f', 'ogg', // one Opus packet per page (OggOpusWriter), so no page waits for the next packet
    '-i', 'pipe:0',
    '-map', '0:a:0', // the one input stream
    '-af', 'aresample=async=1:first_pts=0', // the browser pauses sending in silence: fill gaps, keep the clock
    '-ar', '8000', // G.711's rate
    '-ac', '1', // and mono
    '-f', input.encoding === 'PCMU' ? 'mulaw' : 'alaw', // bare G.711 bytes, one per sample...
    '-flush_packets', '1', // ...written as they are made: the camera plays them as they arrive
    'pipe:1',
  ];
}
