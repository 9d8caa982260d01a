// One LeaderElector (src/election) per process, for the failover benchmark:
// the same role as bench/clientgo-elector for client-go. Prints one JSON line
// per event on stdout ({"event":"started_leading","identity":..,"t":<unix ms>});
// SIGTERM/SIGINT aborts run(), which releases the Lease after the (empty)
// guarded work has stopped, then the process exits.
//
//   node bench/ours-elector.ts --kubeconfig=FILE --identity=ID [--namespace=default] [--name=bench-lease]
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import { LeaderElector } from '../src/election/index.ts';

const { values } = parseArgs({
  options: {
    kubeconfig: { type: 'string', default: process.env.KUBECONFIG },
    identity: { type: 'string' },
    namespace: { type: 'string', default: 'default' },
    name: { type: 'string', default: 'bench-lease' },
  },
});
const identity = values.identity;
if (!identity || !values.kubeconfig) {
  console.error('--identity and --kubeconfig are required');
  process.exit(2);
}

const emit = (event: string, extra: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ event, identity, t: Date.now(), ...extra })}\n`);

const kubeConfig = new k8s.KubeConfig();
kubeConfig.loadFromFile(values.kubeconfig);
const controller = new AbortController();
const elector = new LeaderElector(
  {
    kubeConfig,
    namespace: values.namespace!,
    name: values.name!,
    identity,
    releaseOnCancel: true,
    logger: pino({ level: 'warn' }, pino.destination(2)),
  },
  {
    onStartedLeading: async (leadership) => {
      emit('started_leading', { term: leadership.term });
      await new Promise<void>((resolve) =>
        leadership.signal.addEventListener('abort', () => resolve(), { once: true }),
      );
    },
    onStoppedLeading: () => emit('stopped_leading'),
    onNewLeader: (holder) => emit('new_leader', { holder }),
  },
);
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    emit('signal', { signal: sig });
    controller.abort();
  });
}
emit('ready', { pid: process.pid });
elector.run(controller.signal).then(
  () => {
    emit('exit');
    process.exit(0);
  },
  (err: unknown) => {
    emit('error', { error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  },
);
