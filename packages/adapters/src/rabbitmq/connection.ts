import amqp, { type ChannelModel } from 'amqplib';
import { BrokerError } from '../errors.js';
import { type BrokerLogger, errorFields } from '../logger.js';

export { type BrokerLogger, errorFields } from '../logger.js';

export interface ConnectionOptions {
  readonly url: string;
  /** Shown by `rabbitmqctl list_connections client_properties` and the management UI. */
  readonly name: string;
  readonly heartbeatSeconds: number;
  readonly reconnect: { readonly initialMs: number; readonly maxMs: number };
  readonly logger: BrokerLogger;
}

/**
 * One AMQP connection that comes back by itself: opened on first use, reopened with backoff
 * whenever it drops, until `close()`. Users hold no channel across `get()` calls: each runs its
 * own loop of get a connection → open a channel → work until the channel closes.
 */
export class ReconnectingConnection {
  readonly #options: ConnectionOptions;
  #model: ChannelModel | undefined;
  #running: Promise<void> | undefined;
  #waiters = new Set<{
    done: (model: ChannelModel) => void;
    fail: (error: BrokerError) => void;
  }>();
  #closed = false;
  #wake: (() => void) | undefined;
  #lost: (() => void) | undefined;

  constructor(options: ConnectionOptions) {
    this.#options = options;
  }

  get connected(): boolean {
    return this.#model !== undefined;
  }

  /**
   * The open connection, waiting for one (connecting on first use) for at most `timeoutMs`.
   *
   * @throws BrokerError `BROKER_UNAVAILABLE` after the timeout, `BROKER_CLOSED` after close.
   */
  get(timeoutMs: number, signal?: AbortSignal): Promise<ChannelModel> {
    if (this.#closed) {
      return Promise.reject(new BrokerError('BROKER_CLOSED', 'the RabbitMQ broker is closed'));
    }
    this.#running ??= this.#run();
    if (this.#model) return Promise.resolve(this.#model);
    return new Promise((resolve, reject) => {
      const waiter = {
        done: (model: ChannelModel) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', aborted);
          this.#waiters.delete(waiter);
          resolve(model);
        },
        fail: (error: BrokerError) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', aborted);
          this.#waiters.delete(waiter);
          reject(error);
        },
      };
      const fail = waiter.fail;
      const aborted = () =>
        fail(new BrokerError('BROKER_CLOSED', 'stopped waiting for the RabbitMQ connection'));
      const timer = setTimeout(
        () =>
          fail(
            new BrokerError(
              'BROKER_UNAVAILABLE',
              `no connection to RabbitMQ within ${timeoutMs} ms (${this.#options.name})`,
            ),
          ),
        timeoutMs,
      );
      signal?.addEventListener('abort', aborted, { once: true });
      this.#waiters.add(waiter);
    });
  }

  async #run(): Promise<void> {
    const { reconnect, logger, name } = this.#options;
    let delay = reconnect.initialMs;
    while (!this.#closed) {
      let model: ChannelModel;
      try {
        model = await amqp.connect(this.#urlWithHeartbeat(), {
          clientProperties: { connection_name: name },
        });
      } catch (error) {
        logger.warn(
          {
            connection: name,
            ...errorFields(error),
            retryInMs: delay,
          },
          'RabbitMQ connection failed; retrying',
        );
        await this.#sleep(delay);
        delay = Math.min(reconnect.maxMs, delay * 2);
        continue;
      }
      if (this.#closed) {
        await model.close().catch(() => {});
        return;
      }
      delay = reconnect.initialMs;
      const lost = new Promise<void>((resolve) => {
        this.#lost = resolve;
        model.once('close', () => resolve());
      });
      // Without a listener an 'error' event would crash the process; 'close' follows it.
      model.on('error', (error: unknown) => {
        logger.warn({ connection: name, ...errorFields(error) }, 'RabbitMQ connection error');
      });
      model.on('blocked', (reason: unknown) => {
        logger.warn(
          {
            connection: name,
            reason: String(reason),
          },
          'RabbitMQ blocked the connection (resource alarm)',
        );
      });
      this.#model = model;
      for (const waiter of [...this.#waiters]) waiter.done(model);
      await lost;
      this.#model = undefined;
      if (!this.#closed) {
        logger.warn({ connection: name }, 'RabbitMQ connection lost; reconnecting');
        await this.#sleep(delay);
      }
    }
  }

  #urlWithHeartbeat(): string {
    const url = new URL(this.#options.url);
    if (!url.searchParams.has('heartbeat')) {
      url.searchParams.set('heartbeat', String(this.#options.heartbeatSeconds));
    }
    return url.toString();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  /** Close the connection and stop reconnecting. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake?.();
    for (const waiter of [...this.#waiters]) {
      waiter.fail(new BrokerError('BROKER_CLOSED', 'the RabbitMQ broker is closed'));
    }
    const model = this.#model;
    this.#model = undefined;
    if (model) await model.close().catch(() => {});
    this.#lost?.();
    await this.#running;
  }
}
