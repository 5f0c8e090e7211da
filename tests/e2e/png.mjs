// Minimal PNG reading and writing for the tests (8-bit grey and RGB, no interlace), on node's
// zlib, so that downloaded masks can be compared with ground truth pixel by pixel.
import zlib from 'node:zlib';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** Encodes 8-bit samples (`channels` = 1 grey or 3 RGB) as a PNG. */
export function encodePng(width, height, channels, samples) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = channels === 3 ? 2 : 0;
  const rows = Buffer.alloc(height * (1 + width * channels));
  for (let y = 0; y < height; y++) {
    Buffer.from(samples.subarray(y * width * channels, (y + 1) * width * channels)).copy(rows, y * (1 + width * channels) + 1);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * Decodes a non-interlaced greyscale PNG, 8- or 16-bit, into { width, height, bits, pixels }
 * (Uint8Array or Uint16Array).
 */
export function decodeGrayPng(buf) {
  let pos = 8;
  let width = 0, height = 0, bits = 8;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      bits = data[8];
      if ((bits !== 8 && bits !== 16) || data[9] !== 0 || data[12] !== 0) throw new Error('only 8- or 16-bit grey, non-interlaced PNGs');
    } else if (type === 'IDAT') idat.push(data);
    pos += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const bpp = bits / 8;
  const stride = width * bpp;
  // Unfilter byte-wise (filters work on bytes, with "left" one pixel = bpp bytes back).
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? out[y * stride + i - bpp] : 0;
      const b = y > 0 ? out[(y - 1) * stride + i] : 0;
      const c = i >= bpp && y > 0 ? out[(y - 1) * stride + i - bpp] : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[y * stride + i] = (line[i] + pred) & 0xff;
    }
  }
  if (bits === 8) return { width, height, bits, pixels: out };
  const pixels = new Uint16Array(width * height);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (out[2 * i] << 8) | out[2 * i + 1];
  return { width, height, bits, pixels };
}

/**
 * An uncompressed single-strip greyscale TIFF (little endian): 16-bit unsigned or 32-bit signed
 * integers (the Pilatus convention: negative values flag dead or gap pixels).
 */
export function encodeTiff(width, height, samples, { bits = 16, signed = false } = {}) {
  const bytesPer = bits / 8;
  const data = Buffer.alloc(width * height * bytesPer);
  for (let i = 0; i < width * height; i++) {
    if (bits === 16) data.writeUInt16LE(samples[i], 2 * i);
    else if (signed) data.writeInt32LE(samples[i], 4 * i);
    else data.writeUInt32LE(samples[i], 4 * i);
  }
  // Tags: width, height, bits, compression 1, photometric 1 (black is zero), strip offset,
  // rows per strip, strip bytes, sample format (1 unsigned, 2 signed).
  const tags = [
    [256, 4, width], [257, 4, height], [258, 3, bits], [259, 3, 1], [262, 3, 1],
    [273, 4, 0], [278, 4, height], [279, 4, data.length], [339, 3, signed ? 2 : 1],
  ];
  const ifdOffset = 8;
  const ifdSize = 2 + tags.length * 12 + 4;
  const dataOffset = ifdOffset + ifdSize;
  const head = Buffer.alloc(dataOffset);
  head.write('II', 0, 'latin1');
  head.writeUInt16LE(42, 2);
  head.writeUInt32LE(ifdOffset, 4);
  head.writeUInt16LE(tags.length, ifdOffset);
  tags.forEach(([tag, type, value], k) => {
    const at = ifdOffset + 2 + 12 * k;
    head.writeUInt16LE(tag, at);
    head.writeUInt16LE(type, at + 2);
    head.writeUInt32LE(1, at + 4);
    const v = tag === 273 ? dataOffset : value;
    if (type === 3) head.writeUInt16LE(v, at + 8);
    else head.writeUInt32LE(v, at + 8);
  });
  head.writeUInt32LE(0, ifdOffset + 2 + 12 * tags.length);
  return Buffer.concat([head, data]);
}

/** Boundary F1 with a Euclidean tolerance (as `imaging::metrics::boundary_scores`). */
export function boundaryF1(pred, truth, width, height, tol = 2) {
  const near = (mask) => {
    const out = new Uint8Array(width * height);
    const r = Math.floor(tol);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
      if (!mask[y * width + x]) continue;
      for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) {
        const nx = x + dx, ny = y + dy;
        if (dx * dx + dy * dy <= tol * tol && nx >= 0 && ny >= 0 && nx < width && ny < height) out[ny * width + nx] = 1;
      }
    }
    return out;
  };
  const nt = near(truth), np = near(pred);
  let p = 0, tp = 0, t = 0, tt = 0;
  for (let i = 0; i < width * height; i++) {
    if (pred[i]) { p++; if (nt[i]) tp++; }
    if (truth[i]) { t++; if (np[i]) tt++; }
  }
  const precision = p ? tp / p : 1, recall = t ? tt / t : 1;
  return { precision, recall, f1: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0 };
}
