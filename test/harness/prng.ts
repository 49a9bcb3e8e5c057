/**
 * sfc32: a small, fast, seedable generator. Test data must be reproducible from a seed (so a
 * failing digest can be regenerated) without the cost of crypto-grade randomness.
 */
export function sfc32(seed: number): () => number {
  let a = 0x9e3779b9 ^ seed;
  let b = 0x243f6a88 ^ Math.imul(seed, 0x85ebca6b);
  let c = 0xb7e15162 ^ Math.imul(seed, 0xc2b2ae35);
  let d = 1;
  const next = (): number => {
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  // The first outputs of sfc32 still carry the seed's structure.
  for (let i = 0; i < 15; i++) next();
  return next;
}

/** `length` pseudo-random bytes from `seed`. */
export function prngBytes(length: number, seed: number): Buffer {
  const next = sfc32(seed);
  const words = new Uint32Array(Math.ceil(length / 4));
  for (let i = 0; i < words.length; i++) words[i] = next();
  return Buffer.from(words.buffer, 0, length);
}
