import { pino, type Logger as PinoLogger } from 'pino';
import type { LogLevel } from '../config/types.js';

export type Logger = PinoLogger;

/**
 * JSON lines on stdout. Authorization, cookies and passwords are redacted at the logger so that a
 * careless `log.info({ headers })` anywhere cannot leak a credential.
 */
export function createLogger(level: LogLevel = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      redact: {
        paths: [
          'headers.authorization',
          'headers["proxy-authorization"]',
          'headers.cookie',
          '*.password',
          'password',
          'token',
          '*.token',
        ],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ sync: false }),
  );
}
