/**
 * Names and arguments of everything the RabbitMQ adapter declares, in one place so the README,
 * the topology test and the code agree.
 *
 * For namespace `evident` and a subscription queue `claims`:
 * - `evident.events`: topic exchange every message is published to, routing key = topic;
 * - `evident.delay`: headers exchange for delayed publishes, to `evident.delay.<ms>` queues whose
 *   expired messages dead-letter back to `evident.events` with their topic;
 * - `evident.claims`: the work queue, quorum (or classic with `x-max-priority` for `maxPriority`),
 *   bound to `evident.events` by each of the subscription's topics;
 * - `evident.claims.retry.<ms>`: one quorum queue per backoff delay; messages wait there `<ms>`
 *   then dead-letter back to `evident.claims` only (not to the other subscribers);
 * - `evident.claims.dead`: fanout exchange and quorum queue of dead letters; also the work queue's
 *   own dead-letter exchange, so messages the broker itself dead-letters land there too.
 */
export const names = {
  events: (ns: string) => `${ns}.events`,
  delayExchange: (ns: string) => `${ns}.delay`,
  delayQueue: (ns: string, ms: number) => `${ns}.delay.${ms}`,
  work: (ns: string, queue: string) => `${ns}.${queue}`,
  retry: (ns: string, queue: string, ms: number) => `${ns}.${queue}.retry.${ms}`,
  dead: (ns: string, queue: string) => `${ns}.${queue}.dead`,
};

export const quorum = { 'x-queue-type': 'quorum' } as const;

/** Work queue: quorum, or classic when priorities are asked for (see README: RabbitMQ 3.10). */
export function workQueueArguments(ns: string, queue: string, maxPriority: number | undefined) {
  return maxPriority === undefined
    ? { ...quorum, 'x-dead-letter-exchange': names.dead(ns, queue) }
    : {
        'x-queue-type': 'classic',
        'x-max-priority': maxPriority,
        'x-dead-letter-exchange': names.dead(ns, queue),
      };
}

/**
 * A queue where messages wait `ms` and then go back by dead-lettering, at least once: quorum
 * queues move expired messages only after the target confirms (`at-least-once` strategy, which
 * requires `reject-publish` overflow).
 */
export function waitQueueArguments(ms: number, target: { exchange: string; routingKey?: string }) {
  return {
    ...quorum,
    'x-message-ttl': ms,
    'x-dead-letter-exchange': target.exchange,
    ...(target.routingKey === undefined ? {} : { 'x-dead-letter-routing-key': target.routingKey }),
    'x-dead-letter-strategy': 'at-least-once',
    'x-overflow': 'reject-publish',
  };
}
