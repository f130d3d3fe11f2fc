// Structured logging (pino). Request loggers are children carrying the request id. Secrets are
// never passed to the logger; as a second line of defence, headers that carry them are redacted.
import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

export const REDACT_PATHS = [
  'headers.authorization',
  'headers["x-amz-server-side-encryption-customer-key"]',
  'headers["x-amz-copy-source-server-side-encryption-customer-key"]',
  'secretKey',
  'secretAccessKey',
  'rootKey',
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { service: 'coffer' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
