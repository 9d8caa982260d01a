// A loopback TCP proxy between one replica and the API server. TLS passes
// through untouched (the replica still authenticates as itself); the proxy
// only decides when bytes move:
// - `blackhole`: nothing is delivered in either direction, new connections are
//   held. Like a real partition, what was sent meanwhile is delivered once the
//   link heals (TCP would have retransmitted it) — so a request the client
//   already gave up on can reach the API server late, one of the threats the
//   fencing design must survive.
// - `delay`: every chunk is delivered `delayMs` late, in order.
// - `holdRequests`: what the replica sends is held (responses still flow):
//   requests that already left the client reach the API server only on heal,
//   as with a process paused right after its last check, API Priority and
//   Fairness queueing or a slow TLS handshake.
// What it holds back is observable (`held`, the `read` event), so tests wait
// on the proxy's own state instead of sleeping.
import { EventEmitter } from 'node:events';
import net from 'node:net';

/** `requests`: replica → API server (what `holdRequests` holds); `responses`: the way back. */
export type Direction = 'requests' | 'responses';

type Item = { kind: 'data'; chunk: Buffer; releaseAt: number } | { kind: 'end'; releaseAt: number };

/** One direction of one connection: an ordered queue released by the link state. */
class Pipe {
  private queue: Item[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly to: net.Socket;
  private readonly link: TcpProxy;
  /** Client → API server (the direction `holdRequests` holds). */
  private readonly upstream: boolean;

  constructor(from: net.Socket, to: net.Socket, link: TcpProxy, upstream: boolean) {
    this.to = to;
    this.link = link;
    this.upstream = upstream;
    from.on('data', (chunk: Buffer) => this.push({ kind: 'data', chunk, releaseAt: Date.now() + link.delayMs }));
    from.on('end', () => this.push({ kind: 'end', releaseAt: Date.now() + link.delayMs }));
  }

  private push(item: Item): void {
    this.queue.push(item);
    this.pump();
    // Once the link state has decided: delivered now, or held in the queue.
    this.link.events.emit('read', this.upstream ? 'requests' : 'responses');
  }

  pump(): void {
    if (this.timer) return;
    while (
      this.queue.length > 0 &&
      !this.link.blackholed &&
      !(this.upstream && this.link.requestsHeld) &&
      !this.to.destroyed
    ) {
      const head = this.queue[0] as Item;
      const wait = head.releaseAt - Date.now();
      if (wait > 0) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, wait);
        return;
      }
      this.queue.shift();
      if (head.kind === 'data') this.to.write(head.chunk);
      else this.to.end();
    }
  }

  get empty(): boolean {
    return this.queue.length === 0 || this.to.destroyed;
  }

  /** Bytes read and not yet delivered (0 once the far side is gone: they never will be). */
  heldBytes(direction: Direction): number {
    if ((direction === 'requests') !== this.upstream || this.to.destroyed) return 0;
    return this.queue.reduce((n, item) => n + (item.kind === 'data' ? item.chunk.length : 0), 0);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.queue = [];
  }
}

export class TcpProxy {
  blackholed = false;
  /** Requests (client → API server) are held; responses flow. */
  requestsHeld = false;
  delayMs = 0;
  private server: net.Server;
  private pipes = new Set<Pipe>();
  private sockets = new Set<net.Socket>();
  private readonly upstreamPort: number;
  port = 0;
  /**
   * `read` (direction): a chunk or an end was read from one side and the link
   * state has decided — it was delivered, or it is held (see `held`). Nothing
   * in the proxy listens; it is for observers such as tests.
   */
  readonly events = new EventEmitter<{ read: [Direction] }>();

  private constructor(upstreamPort: number) {
    this.upstreamPort = upstreamPort;
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(upstreamPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(upstreamPort);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy.port = (proxy.server.address() as net.AddressInfo).port;
    return proxy;
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect({ host: '127.0.0.1', port: this.upstreamPort });
    // Connecting immediately is fine even while blackholed: no byte moves until healed.
    const up = new Pipe(client, upstream, this, true);
    const down = new Pipe(upstream, client, this, false);
    this.pipes.add(up).add(down);
    this.sockets.add(client).add(upstream);
    const cleanup = () => {
      client.destroy();
      upstream.destroy();
      up.close();
      down.close();
      this.pipes.delete(up);
      this.pipes.delete(down);
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    // A close on either side closes both once whatever was in flight has been
    // delivered (never while blackholed: the peer cannot learn of it yet).
    let closing = false;
    for (const s of [client, upstream]) {
      s.on('error', () => undefined);
      s.on('close', () => {
        if (closing) return;
        closing = true;
        const wait = setInterval(() => {
          if (!this.blackholed && !this.requestsHeld && up.empty && down.empty) {
            clearInterval(wait);
            cleanup();
          }
        }, 50);
      });
    }
  }

  blackhole(): void {
    this.blackholed = true;
  }

  delay(ms: number): void {
    this.delayMs = ms;
  }

  holdRequests(): void {
    this.requestsHeld = true;
  }

  /** Back to a clean link; whatever was held back is delivered now. */
  heal(): void {
    this.blackholed = false;
    this.requestsHeld = false;
    this.delayMs = 0;
    for (const p of this.pipes) p.pump();
  }

  /** Bytes read in this direction and not yet delivered, over all connections. */
  held(direction: Direction): number {
    let n = 0;
    for (const p of this.pipes) n += p.heldBytes(direction);
    return n;
  }

  get connections(): number {
    return this.sockets.size / 2;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
