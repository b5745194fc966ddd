/** What a transcoded variant encodes video to: VP8 for browsers without H.264, H.264 for an H.265 camera's H.264 viewers. */
export type VariantCodec = 'VP8' | 'H264';
