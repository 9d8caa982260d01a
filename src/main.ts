// The singleton-operator process: `node dist/main.js [flags]` (see --help).
// Exit codes: 0 after a graceful shutdown (SIGTERM/SIGINT), 1 on a fatal
// error, 2 on invalid configuration, 3 when the graceful shutdown took longer
// than --shutdown-timeout. A second SIGTERM/SIGINT exits at once with 1.
import { readFileSync } from 'node:fs';
import { ConfigurationError, loadConfig, usage } from './config/config.ts';
import { SingletonJobController } from './controller/index.ts';
import { chaosHooks, fencesOnlyMode } from './operator/chaos-hook.ts';
import { ExitCode, runOperator } from './operator/run.ts';

// ../package.json from both src/main.ts and dist/main.js (the image keeps package.json next to dist/).
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof ConfigurationError)) throw err;
    process.stderr.write(
      `singleton-operator: ${err.message}\nRun with --help to see every flag and environment variable.\n`,
    );
    return ExitCode.invalidConfiguration;
  }
  if (config === 'help') {
    process.stdout.write(usage());
    return ExitCode.ok;
  }
  const { shutdownTimeoutMs } = config;
  const shutdown = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (shutdown.signal.aborted) {
      process.stderr.write(`singleton-operator: received ${signal} again, exiting without a graceful shutdown\n`);
      process.exit(ExitCode.failed);
    }
    shutdown.abort(signal);
    setTimeout(() => {
      process.stderr.write(`singleton-operator: graceful shutdown took longer than ${shutdownTimeoutMs} ms, exiting\n`);
      process.exit(ExitCode.shutdownTimedOut);
    }, shutdownTimeoutMs).unref();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  let fencesOnly;
  try {
    fencesOnly = fencesOnlyMode();
  } catch (err) {
    process.stderr.write(`singleton-operator: ${(err as Error).message}\n`);
    return ExitCode.invalidConfiguration;
  }
  return runOperator({
    config,
    ...(fencesOnly ? { fencesOnly } : {}),
    version,
    signal: shutdown.signal,
    createController: ({ kubeConfig, namespaces, logger, registry, lease, workers }) =>
      new SingletonJobController({ kubeConfig, namespaces, logger, registry, lease, workers, ...chaosHooks(logger) }),
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`singleton-operator: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(ExitCode.failed);
  },
);
