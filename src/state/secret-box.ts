/**
 * What the gate keeps in Redis that would hand out trust — the token signing key, the ACME
 * account key, the certificate and its key, challenge answers — is sealed (AES-256-GCM) with a key
 * that never enters Redis: `redisOptions.secretKeyFile` or `redisOptions.secretKey` (its
 * environment variable). Whoever reads Redis learns nothing usable; whoever writes it cannot
 * plant a key, a certificate or a challenge answer the gate would adopt, because opening checks
 * the seal and binds it to the Redis key it was written under (moving a sealed value to another
 * key breaks it too).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const FORMAT = 'rg-sealed-v1';
const IV_BYTES = 12;
// Fixed: GCM would otherwise accept a tag cut to 4 bytes, which can be guessed.
const TAG_BYTES = 16;
/** The material is a secret the operator made (`openssl rand -base64 32`); less is a password. */
export const MIN_SECRET_KEY_LENGTH = 32;

export class SealError extends Error {}

export class SecretBox {
  private readonly key: Buffer;

  constructor(material: string) {
    if (material.length < MIN_SECRET_KEY_LENGTH) throw new RangeError(`the secret key is ${material.length} characters; at least ${MIN_SECRET_KEY_LENGTH} are needed`);
    this.key = Buffer.from(hkdfSync('sha256', material, FORMAT, 'registry-gate redis secrets', 32));
  }

  seal(redisKey: string, plaintext: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(redisKey));
    const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [FORMAT, iv.toString('base64url'), sealed.toString('base64url'), cipher.getAuthTag().toString('base64url')].join(':');
  }

  /** Throws SealError for anything this box did not seal under `redisKey`: plain text, another key, a changed byte. */
  open(redisKey: string, stored: string): string {
    const parts = stored.split(':');
    if (parts.length !== 4 || parts[0] !== FORMAT) throw new SealError('it is not sealed (written by an older version, or planted)');
    const [, iv, sealed, tag] = parts as [string, string, string, string];
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(redisKey));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(sealed, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new SealError('its seal does not open with this secret key (another secretKey, or planted)');
    }
  }
}
