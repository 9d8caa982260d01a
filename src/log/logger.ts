// The operator's logger: pino JSON lines on stdout, one object per line with
// a capitalised message plus key/values (identity on every line, bound by the
// operator or the elector; leader, term, token and the object where they apply). Time is ISO-8601 so that lines from
// several replicas can be merged and read by a person.
import pino, { type Logger, type LoggerOptions } from 'pino';
import type { LogLevel } from '../config/config.ts';

export interface LoggerSettings {
  level: LogLevel;
  /** Where lines go; stdout by default (a test passes a stream). */
  destination?: pino.DestinationStream;
}

export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    level: settings.level,
    // No pid/hostname: the identity (added by the caller as a child binding) names the replica.
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: pino.stdSerializers.err },
  };
  return settings.destination ? pino(options, settings.destination) : pino(options, pino.destination({ sync: true }));
}
