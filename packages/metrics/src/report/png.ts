import { deflateSync, inflateSync } from 'node:zlib';
import { UserError } from '@sop/core';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO-HDLC, as PNG and zlib use). */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export const PNG_SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** An 8-bit image: `channels` 1 (gray), 3 (RGB) or 4 (RGBA), row-major, interleaved [H, W, channels]. */
export interface RasterImage {
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  data: Uint8Array;
}

function chunk(type: string, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(payload, 8);
  view.setUint32(8 + payload.length, crc32(out, 4, 8 + payload.length));
  return out;
}

/** Encode an 8-bit gray/RGB/RGBA image as a PNG (filter 0 on every scanline, zlib deflate). */
export function encodePng(img: RasterImage): Uint8Array {
  const { width: w, height: h, channels: ch } = img;
  if (!(Number.isInteger(w) && Number.isInteger(h) && w > 0 && h > 0)) throw new UserError(`PNG size must be positive integers, got ${w}×${h}`, 'pass a non-empty image');
  if (img.data.length !== w * h * ch) throw new UserError(`PNG data has ${img.data.length} bytes, expected ${w}×${h}×${ch}`, 'pass [H, W, channels] bytes');
  const colorType = ch === 1 ? 0 : ch === 3 ? 2 : 6;
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, w);
  v.setUint32(4, h);
  ihdr[8] = 8;
  ihdr[9] = colorType;
  const raw = new Uint8Array(h * (1 + w * ch));
  for (let y = 0; y < h; y++) {
    raw[y * (1 + w * ch)] = 0;
    raw.set(img.data.subarray(y * w * ch, (y + 1) * w * ch), y * (1 + w * ch) + 1);
  }
  const parts = [PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', new Uint8Array(deflateSync(raw))), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Decode an 8-bit, non-interlaced gray/RGB/RGBA PNG (all five scanline filters), checking every chunk's CRC. Enough to
 * read back what {@link encodePng} writes; throws on anything else.
 */
export function decodePng(png: Uint8Array): RasterImage {
  for (let i = 0; i < 8; i++) if (png[i] !== PNG_SIGNATURE[i]) throw new UserError('not a PNG: bad signature', 'pass PNG bytes');
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let off = 8;
  let w = 0;
  let h = 0;
  let ch = 0;
  const idat: Uint8Array[] = [];
  while (off < png.length) {
    const len = view.getUint32(off);
    const type = String.fromCharCode(...png.subarray(off + 4, off + 8));
    const crc = view.getUint32(off + 8 + len);
    if (crc32(png, off + 4, off + 8 + len) !== crc) throw new UserError(`PNG chunk ${type}: CRC mismatch`, 'the file is corrupt');
    const data = png.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
      w = dv.getUint32(0);
      h = dv.getUint32(4);
      if (data[8] !== 8 || data[12] !== 0) throw new UserError('PNG: only 8-bit non-interlaced images are supported', 'use encodePng output');
      ch = ({ 0: 1, 2: 3, 6: 4 } as Record<number, number>)[data[9]] ?? 0;
      if (!ch) throw new UserError(`PNG: colour type ${data[9]} is not supported`, 'use gray, RGB or RGBA');
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    off += 12 + len;
  }
  const all = new Uint8Array(idat.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of idat) {
    all.set(p, o);
    o += p.length;
  }
  const raw = new Uint8Array(inflateSync(all));
  const stride = w * ch;
  const out = new Uint8Array(h * stride);
  for (let y = 0; y < h; y++) {
    const f = raw[y * (stride + 1)];
    for (let x = 0; x < stride; x++) {
      const r = raw[y * (stride + 1) + 1 + x];
      const a = x >= ch ? out[y * stride + x - ch] : 0;
      const b = y > 0 ? out[(y - 1) * stride + x] : 0;
      const c = x >= ch && y > 0 ? out[(y - 1) * stride + x - ch] : 0;
      let pred = 0;
      if (f === 1) pred = a;
      else if (f === 2) pred = b;
      else if (f === 3) pred = (a + b) >> 1;
      else if (f === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (f !== 0) throw new UserError(`PNG: bad filter type ${f}`, 'the file is corrupt');
      out[y * stride + x] = (r + pred) & 0xff;
    }
  }
  return { width: w, height: h, channels: ch as 1 | 3 | 4, data: out };
}

/** `data:image/png;base64,…` for inline <img> tags. */
export function pngDataUri(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
}

/**
 * Turn a float image into 8-bit RGB: `shape` [C, H, W] (C = 1 or 3, the input convention) or [H, W]; values are
 * min-max scaled to 0…255 over the whole image (a constant image becomes mid-gray).
 */
export function floatImageToRgb(pixels: ArrayLike<number>, shape: number[]): RasterImage {
  let c: number;
  let h: number;
  let w: number;
  if (shape.length === 2) [c, h, w] = [1, shape[0], shape[1]];
  else if (shape.length === 3) [c, h, w] = shape as [number, number, number];
  else throw new UserError(`image shape must be [C, H, W] or [H, W], got [${shape.join(', ')}]`, 'pass one image without the batch axis');
  if (c !== 1 && c !== 3) throw new UserError(`image must have 1 or 3 channels, got ${c}`, 'pass a gray or RGB image');
  if (pixels.length !== c * h * w) throw new UserError(`image has ${pixels.length} values, expected ${c}×${h}×${w}`, 'check the image shape');
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < pixels.length; i++) {
    if (pixels[i] < lo) lo = pixels[i];
    if (pixels[i] > hi) hi = pixels[i];
  }
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const data = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let k = 0; k < 3; k++) {
        const src = pixels[(c === 1 ? 0 : k) * h * w + y * w + x];
        data[(y * w + x) * 3 + k] = scale ? Math.round((src - lo) * scale) : 128;
      }
    }
  }
  return { width: w, height: h, channels: 3, data };
}
