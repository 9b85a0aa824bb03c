import { destination, pino, type Logger } from 'pino';

/** Structured logs on stderr (fd 2); a background mount's stderr is its log file. */
export function makeLogger(level: string): Logger {
  return pino({ level, base: { pid: process.pid } }, destination({ fd: 2, sync: true }));
}
