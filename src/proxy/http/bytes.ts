/**
 * Byte-level helpers for the head parsers, written as plain loops on purpose.
 *
 * Every Buffer method (indexOf, toString, latin1Slice…) is a call into C++
 * that costs several hundred instructions before it looks at a byte
 * (argument checks, handle scopes, typed-array unwrapping), while a request
 * or response head is a few dozen bytes per line: a loop that Turbofan
 * compiles to a few instructions per byte is cheaper for every line the
 * proxy sees. Strings are made only where a caller needs a string.
 */

const CR = 13;
const LF = 10;

/** tchar (RFC 9110 §5.6.2). */
export const TCHAR: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let c = 0x30; c <= 0x39; c++) t[c] = 1;
  for (let c = 0x41; c <= 0x5a; c++) t[c] = 1;
  for (let c = 0x61; c <= 0x7a; c++) t[c] = 1;
  for (const ch of "!#$%&'*+-.^_`|~") t[ch.charCodeAt(0)] = 1;
  return t;
})();

/** Bytes allowed in a field value: VCHAR, obs-text, SP, HTAB (RFC 9110 §5.5). */
export const FIELD_VALUE: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let c = 0x20; c <= 0xff; c++) t[c] = 1;
  t[0x7f] = 0;
  t[0x09] = 1;
  return t;
})();

/**
 * Buffer.prototype.latin1Slice: what toString('latin1', a, b) ends up calling,
 * without the encoding dispatch (undici uses it the same way).
 */
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };
export const latin1: (buf: Buffer, start: number, end: number) => string =
  typeof (Buffer.prototype as Partial<Latin1Buffer>).latin1Slice === 'function'
    ? (buf, start, end) => (buf as Latin1Buffer).latin1Slice(start, end)
    : (buf, start, end) => buf.toString('latin1', start, end);

/** Index of the first `byte` in buf[from, end), or -1. */
export function indexOfByte(buf: Buffer, byte: number, from: number, end: number): number {
  for (let i = from; i < end; i++) if (buf[i] === byte) return i;
  return -1;
}

/**
 * Index just past the first CR LF CR LF in buf[from, end), or -1.
 * `i` is where such a match would end. The pattern holds only CR and LF, so
 * a byte that is neither rules out every match that covers it and the next
 * candidate end is 4 bytes on; most bytes of a head are text, so about one
 * in four is read.
 */
export function headEnd(buf: Buffer, from: number, end: number): number {
  let i = from + 3;
  while (i < end) {
    const b = buf[i];
    if (b === LF) {
      if (buf[i - 1] === CR && buf[i - 2] === LF && buf[i - 3] === CR) return i + 1;
      i += 2; // this LF can only be the pattern's second byte
    } else if (b === CR) {
      i += 1; // this CR can only be the pattern's third byte
    } else {
      i += 4;
    }
  }
  return -1;
}

/** ASCII lower-casing of one byte. */
export const LOWER: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = c >= 65 && c <= 90 ? c + 32 : c;
  return t;
})();

/** Whether buf[start, start + lower.length) is `lower` (ASCII lower-case bytes) ignoring ASCII case. */
export function bytesEqualLower(buf: Buffer, start: number, lower: Uint8Array): boolean {
  for (let k = 0; k < lower.length; k++) if (LOWER[buf[start + k] as number] !== lower[k]) return false;
  return true;
}
