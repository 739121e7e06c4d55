/**
 * Message body framing, streamed: which bytes of a connection belong to the
 * current message's body. Bytes are never buffered or rewritten here — the
 * caller forwards (or, for a denied request, drops) exactly the range
 * `consume()` says is body, so chunked bodies and their trailers pass
 * through verbatim.
 *
 * Modes (RFC 9112 §6.3): NONE (no body), LENGTH (Content-Length),
 * CHUNKED (§7.1, trailers §7.1.2), UNTIL_CLOSE (a response without framing).
 *
 * Chunked parsing is strict in both directions: every line ends in CRLF,
 * chunk-ext holds no CTL but HTAB and is at most 4 KiB, trailers hold no
 * obs-fold or CTL and are at most `maxTrailerBytes`; a chunk size past
 * Number.MAX_SAFE_INTEGER is 'body-too-large'. Errors are thrown as the
 * kind given to reset(): 'malformed' (request, 400) or 'upstream-failed'
 * (response, 502).
 */
import { HttpProxyError, type HttpProxyErrorKind } from './errors.ts';

export const BODY_NONE = 0;
export const BODY_LENGTH = 1;
export const BODY_CHUNKED = 2;
export const BODY_UNTIL_CLOSE = 3;

const CR = 13;
const LF = 10;

// Chunked decoder states.
const S_SIZE_START = 0;
const S_SIZE = 1;
const S_EXT = 2;
const S_SIZE_LF = 3;
const S_DATA = 4;
const S_DATA_CR = 5;
const S_DATA_LF = 6;
const S_TRAILER_START = 7;
const S_TRAILER_LINE = 8;
const S_TRAILER_LF = 9;
const S_END_LF = 10;

const MAX_EXT_BYTES = 4096;

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

export class BodyFraming {
  mode = BODY_NONE;
  /** True once the whole body (and trailers) went past. */
  done = true;
  /** Body bytes consumed so far (framing included for chunked). */
  consumed = 0;
  #remaining = 0;
  #state = S_SIZE_START;
  #lineBytes = 0;
  #trailerBytes = 0;
  readonly #maxTrailerBytes: number;
  #errorKind: HttpProxyErrorKind = 'malformed';

  constructor(maxTrailerBytes = 65536) {
    this.#maxTrailerBytes = maxTrailerBytes;
  }

  reset(mode: number, length: number, errorKind: HttpProxyErrorKind): void {
    this.mode = mode;
    this.#errorKind = errorKind;
    this.consumed = 0;
    this.#state = S_SIZE_START;
    this.#lineBytes = 0;
    this.#trailerBytes = 0;
    if (mode === BODY_LENGTH) {
      this.#remaining = length;
      this.done = length === 0;
    } else {
      this.#remaining = 0;
      this.done = mode === BODY_NONE;
    }
  }

  #fail(reason: string): never {
    throw new HttpProxyError(this.#errorKind, reason);
  }

  /**
   * Consumes body bytes from buf[start, end). Returns the offset where this
   * message's body ends (≤ end); bytes past it belong to the next message.
   */
  consume(buf: Buffer, start: number, end: number): number {
    if (this.done) return start;
    if (this.mode === BODY_LENGTH) {
      const n = Math.min(this.#remaining, end - start);
      this.#remaining -= n;
      this.consumed += n;
      if (this.#remaining === 0) this.done = true;
      return start + n;
    }
    if (this.mode === BODY_UNTIL_CLOSE) {
      this.consumed += end - start;
      return end;
    }
    const stop = this.#chunked(buf, start, end);
    this.consumed += stop - start;
    return stop;
  }

  /** The end of input: a body framed by close is complete; any other is truncated. */
  finishAtClose(): boolean {
    if (this.mode === BODY_UNTIL_CLOSE) {
      this.done = true;
      return true;
    }
    return this.done;
  }

  // RFC 9112 §7.1: chunked-body = *chunk last-chunk trailer-section CRLF
  #chunked(buf: Buffer, start: number, end: number): number {
    let i = start;
    while (i < end) {
      if (this.#state === S_DATA) {
        const n = Math.min(this.#remaining, end - i);
        i += n;
        this.#remaining -= n;
        if (this.#remaining === 0) this.#state = S_DATA_CR;
        continue;
      }
      const b = buf[i++] as number;
      switch (this.#state) {
        case S_SIZE_START: {
          const v = hexValue(b);
          if (v < 0) this.#fail('bad-chunk-size');
          this.#remaining = v;
          this.#lineBytes = 1;
          this.#state = S_SIZE;
          break;
        }
        case S_SIZE: {
          const v = hexValue(b);
          if (v >= 0) {
            this.#remaining = this.#remaining * 16 + v;
            if (this.#remaining > Number.MAX_SAFE_INTEGER) throw new HttpProxyError(this.#errorKind === 'malformed' ? 'body-too-large' : this.#errorKind, 'chunk-size');
          } else if (b === CR) this.#state = S_SIZE_LF;
          else if (b === 0x3b || b === 0x20 || b === 0x09) this.#state = S_EXT;
          else this.#fail('bad-chunk-size');
          break;
        }
        case S_EXT:
          if (b === CR) this.#state = S_SIZE_LF;
          else if ((b < 0x20 && b !== 0x09) || b === 0x7f) this.#fail('ctl-in-chunk-ext');
          else if (++this.#lineBytes > MAX_EXT_BYTES) this.#fail('chunk-ext-too-long');
          break;
        case S_SIZE_LF:
          if (b !== LF) this.#fail('bare-cr');
          this.#state = this.#remaining === 0 ? S_TRAILER_START : S_DATA;
          break;
        case S_DATA_CR:
          if (b !== CR) this.#fail('chunk-data-overrun');
          this.#state = S_DATA_LF;
          break;
        case S_DATA_LF:
          if (b !== LF) this.#fail('bare-cr');
          this.#state = S_SIZE_START;
          break;
        case S_TRAILER_START:
          if (b === CR) this.#state = S_END_LF;
          else if (b === 0x20 || b === 0x09) this.#fail('obs-fold-in-trailer');
          else if (b < 0x20 || b === 0x7f) this.#fail('ctl-in-trailer');
          else {
            this.#state = S_TRAILER_LINE;
            this.#trailer();
          }
          break;
        case S_TRAILER_LINE:
          if (b === CR) this.#state = S_TRAILER_LF;
          else if ((b < 0x20 && b !== 0x09) || b === 0x7f) this.#fail('ctl-in-trailer');
          else this.#trailer();
          break;
        case S_TRAILER_LF:
          if (b !== LF) this.#fail('bare-cr');
          this.#state = S_TRAILER_START;
          break;
        case S_END_LF:
          if (b !== LF) this.#fail('bare-cr');
          this.done = true;
          return i;
      }
    }
    return end;
  }

  #trailer(): void {
    if (++this.#trailerBytes > this.#maxTrailerBytes) this.#fail('trailers-too-large');
  }
}
