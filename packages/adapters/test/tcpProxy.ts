/**
 * A TCP proxy in the test process between a client and a real server, to cut connections for
 * real: `drop()` destroys every open socket pair (the client sees a reset, as on a network
 * failure), `refuse` keeps new connections from getting through while an outage lasts, and
 * `muteReplies` lets the client's bytes through while discarding the server's (a publish is stored
 * and its confirm lost).
 */
import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  /** Port the proxy listens on, on 127.0.0.1. */
  readonly port: number;
  /** Open client connections. */
  readonly connections: number;
  /** Destroy every open connection, both sides. */
  drop(): void;
  /** While true, new connections are destroyed at once. */
  refuse: boolean;
  /** While true, what the server sends is discarded; what the client sends still arrives. */
  muteReplies: boolean;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  const server = createServer((client) => {
    if (proxy.refuse) {
      client.destroy();
      return;
    }
    const upstream = connect(target);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      if (!proxy.muteReplies) client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  const proxy: TcpProxy = {
    port: address.port,
    get connections() {
      return pairs.size;
    },
    refuse: false,
    muteReplies: false,
    drop() {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    close() {
      proxy.drop();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}

/** The same AMQP URL, pointed at the proxy. */
export function viaProxy(url: string, proxy: TcpProxy): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
}
