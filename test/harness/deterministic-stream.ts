import { Readable } from 'node:stream';
import { prngBytes } from './prng.js';

const BLOCK = 1024 * 1024;

/** A Readable that knows its length, so uploaders can send exact Content-Length / Content-Range. */
export class DeterministicStream extends Readable {
  private readonly base: Buffer;
  private sent = 0;
  private index = 0;

  constructor(
    readonly totalBytes: number,
    readonly seed: number,
  ) {
    super({ highWaterMark: 2 * BLOCK });
    this.base = prngBytes(BLOCK, seed);
  }

  override _read(): void {
    if (this.sent >= this.totalBytes) {
      this.push(null);
      return;
    }
    const len = Math.min(BLOCK, this.totalBytes - this.sent);
    // Generating 2 GiB with a PRNG would cost seconds of CPU the benchmark wants to measure
    // elsewhere; a rotated copy of one random block plus the block counter is memcpy-fast and
    // still makes every MiB (and so every chunk boundary) distinct.
    const out = Buffer.allocUnsafe(len);
    const rot = (this.index * 4099) % BLOCK;
    const n = this.base.copy(out, 0, rot, Math.min(BLOCK, rot + len));
    if (n < len) this.base.copy(out, n, 0, len - n);
    if (len >= 8) out.writeBigUInt64LE(BigInt(this.index) ^ 0x5a5a5a5a5a5a5a5an, 0);
    this.index += 1;
    this.sent += len;
    this.push(out);
  }
}

/** `totalBytes` of reproducible pseudo-random data: same (totalBytes, seed) → same bytes. */
export function deterministicStream(totalBytes: number, seed: number): DeterministicStream {
  return new DeterministicStream(totalBytes, seed);
}
