import type { Database, Queryable } from '@evident/eventstore';
import type { EventObject, StateValue } from 'xstate';
import { statementName } from './statementName.js';

/**
 * Actions as durable jobs. The trigger created a row per action in the same statement as the
 * step; here rows are claimed, run and settled. Two ways to run one:
 *
 * - A plain handler: claimed with a lease, run, marked done. A worker that dies mid-run leaves a
 *   lease that expires, and the action runs again: at least once, with the same idempotency key.
 * - A transactional handler: the row is locked, the handler writes through the transaction it is
 *   given, and the row is marked done in that same transaction. The effect and the record of it
 *   commit together or not at all: exactly once, for effects in this database.
 */

/** What an action handler is given: one action of one committed step. */
export interface ActionJob<Context = unknown> {
  readonly streamType: string;
  readonly entityId: string;
  /** Stream version of the step that scheduled the action. */
  readonly version: number;
  /** Position among that step's actions. */
  readonly index: number;
  readonly type: string;
  readonly params: unknown;
  /** `streamType/entityId/version/index`: the same on every attempt of this job, unique otherwise. */
  readonly idempotencyKey: string;
  /** 1 on the first attempt. */
  readonly attempt: number;
  /** The machine as committed by the step (state value and context after it). */
  readonly state: { readonly value: StateValue; readonly context: Context };
  /** The event that caused the step. */
  readonly event: EventObject;
}

/** Runs one action after commit, at least once per job; use `idempotencyKey` to de-duplicate. */
export type ActionHandler<Context = unknown> = (job: ActionJob<Context>) => unknown;

/**
 * Runs one action inside the transaction that marks its job done: exactly once for what it
 * writes through `tx`.
 */
export interface TransactionalActionHandler<Context = unknown> {
  readonly transactional: true;
  readonly run: (job: ActionJob<Context>, tx: Queryable) => Promise<unknown>;
}

/** Status of a job row. */
export type JobStatus = 'pending' | 'running' | 'done' | 'failed';

/** A job as stored, for operators and tests (`durable.jobs(entityId)`). */
export interface JobRecord {
  readonly version: number;
  readonly index: number;
  readonly type: string;
  readonly params: unknown;
  readonly status: JobStatus;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly completedAt: string | null;
}

/** A timer as stored (`durable.timers(entityId)`). */
export interface TimerRecord {
  readonly id: string;
  readonly scheduledVersion: number;
  readonly event: EventObject;
  /** Database time at which it fires (ISO 8601). */
  readonly fireAt: string;
  readonly status: 'pending' | 'firing' | 'fired' | 'cancelled' | 'stale';
  readonly settledVersion: number | null;
}

export interface JobKey {
  readonly entityId: string;
  readonly version: number;
  readonly index: number;
}

/** Outcome of one attempt to run a job. */
export type JobOutcome = 'done' | 'retry' | 'failed' | 'skipped';

/** The committed step a job belongs to; read from the stream when not at hand. */
export type StepInfo = { readonly state: ActionJob['state']; readonly event: EventObject };

export interface JobRunnerOptions {
  readonly db: Database;
  /** Quoted schema name. */
  readonly schema: string;
  readonly streamType: string;
  readonly handlerFor: (type: string) => ActionHandler | TransactionalActionHandler;
  readonly readStep: (entityId: string, version: number) => Promise<StepInfo>;
  readonly leaseMs: number;
  readonly maxAttempts: number;
}

const iso = (value: unknown): string | null =>
  value === null || value === undefined ? null : new Date(value as string).toISOString();

/** Backoff after the n-th failed attempt (`attempts` is n, in SQL): 1 s, 2 s, 4 s, … at most 5 min. */
const backoff = (attempts: string) =>
  `least(1000 * power(2, greatest(${attempts} - 1, 0)), 300000) * interval '1 millisecond'`;

/** Keep what a failure says to an operator short; handlers' messages are theirs to keep PHI-free. */
function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${error.name}${typeof code === 'string' ? ` ${code}` : ''}: ${error.message}`.slice(
      0,
      1000,
    );
  }
  return 'non-Error thrown';
}

export function createJobRunner(options: JobRunnerOptions) {
  const { db, schema: s, streamType, leaseMs, maxAttempts } = options;
  const pk = 'stream_type = $1 and entity_id = $2 and version = $3 and action_index = $4';
  const claimable = `((status = 'pending' and run_after <= now()) or (status = 'running' and lease_until < now()))`;
  const sql = {
    claim: `update ${s}.machine_jobs
               set status = 'running', attempts = attempts + 1,
                   lease_until = now() + $5 * interval '1 millisecond'
             where ${pk} and ${claimable}
             returning attempts, action_type, params`,
    lockForTransaction: `select attempts, action_type, params from ${s}.machine_jobs
                          where ${pk} and ${claimable}
                          for update skip locked`,
    done: `update ${s}.machine_jobs
              set status = 'done', completed_at = now(), lease_until = null, last_error = null
            where ${pk} and status = 'running' and attempts = $5`,
    doneInTransaction: `update ${s}.machine_jobs
                           set status = 'done', attempts = attempts + 1, completed_at = now(),
                               lease_until = null, last_error = null
                         where ${pk}`,
    failed: `update ${s}.machine_jobs
                set status = case when attempts >= $5 then 'failed' else 'pending' end,
                    run_after = now() + ${backoff('attempts')},
                    lease_until = null, last_error = $6
              where ${pk} and status = 'running' and attempts = $7
              returning status`,
    failedInTransaction: `update ${s}.machine_jobs
                             set attempts = attempts + 1,
                                 status = case when attempts + 1 >= $5 then 'failed' else 'pending' end,
                                 run_after = now() + ${backoff('attempts + 1')},
                                 lease_until = null, last_error = $6
                           where ${pk} and status in ('pending', 'running')
                           returning status`,
    due: `select entity_id, version, action_index, action_type from ${s}.machine_jobs
           where stream_type = $1 and ${claimable} and ($3::text is null or entity_id = $3)
           order by run_after limit $2`,
    list: `select version, action_index, action_type, params, status, attempts, last_error,
                  completed_at
             from ${s}.machine_jobs where stream_type = $1 and entity_id = $2
            order by version, action_index`,
    nextDue: `select greatest(0, extract(epoch from (min(t) - now())) * 1000)::float8 as ms from (
                select min(run_after) as t from ${s}.machine_jobs
                 where stream_type = $1 and status = 'pending'
                union all
                select min(lease_until) from ${s}.machine_jobs
                 where stream_type = $1 and status = 'running'
                union all
                select min(fire_at) from ${s}.machine_timers
                 where stream_type = $1 and status = 'pending'
                union all
                select min(lease_until) from ${s}.machine_timers
                 where stream_type = $1 and status = 'firing'
              ) as due`,
  };

  const names = Object.fromEntries(
    Object.entries(sql).map(([k, text]) => [k, statementName(text)]),
  ) as Record<keyof typeof sql, string>;
  const keyParams = (key: JobKey) => [streamType, key.entityId, key.version, key.index];
  const idempotencyKey = (key: JobKey) =>
    `${streamType}/${key.entityId}/${key.version}/${key.index}`;

  function job(
    key: JobKey,
    row: { attempts: number; action_type: string; params: unknown },
    step: StepInfo,
    attempt: number,
  ): ActionJob {
    return {
      streamType,
      entityId: key.entityId,
      version: key.version,
      index: key.index,
      type: row.action_type,
      params: row.params ?? undefined,
      idempotencyKey: idempotencyKey(key),
      attempt,
      state: step.state,
      event: step.event,
    };
  }

  async function runPlain(
    key: JobKey,
    handler: ActionHandler,
    step: StepInfo | undefined,
  ): Promise<JobOutcome> {
    const [claimed] = await db.query<{ attempts: number; action_type: string; params: unknown }>(
      sql.claim,
      [...keyParams(key), leaseMs],
      names.claim,
    );
    if (!claimed) return 'skipped';
    try {
      const info = step ?? (await options.readStep(key.entityId, key.version));
      await handler(job(key, claimed, info, claimed.attempts));
    } catch (error) {
      const [row] = await db.query<{ status: string }>(sql.failed, [
        ...keyParams(key),
        maxAttempts,
        describeError(error),
        claimed.attempts,
      ]);
      return row?.status === 'failed' ? 'failed' : 'retry';
    }
    await db.query(sql.done, [...keyParams(key), claimed.attempts], names.done);
    return 'done';
  }

  async function runTransactional(
    key: JobKey,
    handler: TransactionalActionHandler,
    step: StepInfo | undefined,
  ): Promise<JobOutcome> {
    let ran = false;
    try {
      const info = step ?? (await options.readStep(key.entityId, key.version));
      await db.transaction(async (tx) => {
        const [locked] = await tx.query<{
          attempts: number;
          action_type: string;
          params: unknown;
        }>(sql.lockForTransaction, keyParams(key));
        if (!locked) return;
        ran = true;
        await handler.run(job(key, locked, info, locked.attempts + 1), tx);
        await tx.query(sql.doneInTransaction, keyParams(key));
      });
    } catch (error) {
      if (!ran) throw error;
      const [row] = await db.query<{ status: string }>(sql.failedInTransaction, [
        ...keyParams(key),
        maxAttempts,
        describeError(error),
      ]);
      return row?.status === 'failed' ? 'failed' : 'retry';
    }
    return ran ? 'done' : 'skipped';
  }

  return {
    idempotencyKey,

    /** Run one job now if it is claimable; `step` saves reading the stream when at hand. */
    run(key: JobKey, type: string, step?: StepInfo): Promise<JobOutcome> {
      const handler = options.handlerFor(type);
      return typeof handler === 'function'
        ? runPlain(key, handler, step)
        : runTransactional(key, handler, step);
    },

    async due(
      limit: number,
      entityId: string | null,
    ): Promise<(JobKey & { readonly type: string })[]> {
      const rows = await db.query<{
        entity_id: string;
        version: string | number;
        action_index: number;
        action_type: string;
      }>(sql.due, [streamType, limit, entityId], names.due);
      return rows.map((r) => ({
        entityId: r.entity_id,
        version: Number(r.version),
        index: r.action_index,
        type: r.action_type,
      }));
    },

    async list(entityId: string): Promise<JobRecord[]> {
      const rows = await db.query<{
        version: string | number;
        action_index: number;
        action_type: string;
        params: unknown;
        status: JobStatus;
        attempts: number;
        last_error: string | null;
        completed_at: unknown;
      }>(sql.list, [streamType, entityId]);
      return rows.map((r) => ({
        version: Number(r.version),
        index: r.action_index,
        type: r.action_type,
        params: r.params ?? undefined,
        status: r.status,
        attempts: r.attempts,
        lastError: r.last_error,
        completedAt: iso(r.completed_at),
      }));
    },

    /** Milliseconds until the next job or timer is due (or a lease expires); null for none. */
    async nextDueInMs(): Promise<number | null> {
      const [row] = await db.query<{ ms: number | null }>(sql.nextDue, [streamType]);
      return row?.ms === null || row?.ms === undefined ? null : Number(row.ms);
    },
  };
}

export type JobRunner = ReturnType<typeof createJobRunner>;

/** A timer claimed for firing. */
export interface ClaimedTimer {
  readonly entityId: string;
  readonly id: string;
  readonly version: number;
  readonly event: EventObject;
  readonly correlationId: string;
  readonly causeEventId: string;
}

export function createTimerStore(db: Database, s: string, streamType: string, leaseMs: number) {
  const pk = 'stream_type = $1 and entity_id = $2 and timer_id = $3 and scheduled_version = $4';
  const sql = {
    // Claimed with a lease, so a worker that dies while firing leaves the timer to another.
    claimDue: `update ${s}.machine_timers as t
                  set status = 'firing', attempts = t.attempts + 1,
                      lease_until = now() + $3 * interval '1 millisecond'
                 from (select entity_id, timer_id, scheduled_version from ${s}.machine_timers
                        where stream_type = $1 and ($4::text is null or entity_id = $4)
                          and ((status = 'pending' and fire_at <= now())
                               or (status = 'firing' and lease_until < now()))
                        order by fire_at limit $2
                        for update skip locked) as due
                where t.stream_type = $1 and t.entity_id = due.entity_id
                  and t.timer_id = due.timer_id and t.scheduled_version = due.scheduled_version
                returning t.entity_id, t.timer_id, t.scheduled_version, t.event, t.correlation_id,
                          t.cause_event_id`,
    stale: `update ${s}.machine_timers set status = 'stale', lease_until = null
             where ${pk} and status in ('pending', 'firing')`,
    release: `update ${s}.machine_timers
                 set status = 'pending', lease_until = null, last_error = $5,
                     fire_at = now() + $6 * interval '1 millisecond'
               where ${pk} and status = 'firing'`,
    list: `select timer_id, scheduled_version, event, fire_at, status, settled_version
             from ${s}.machine_timers where stream_type = $1 and entity_id = $2
            order by scheduled_version, timer_id`,
  };
  const claimDueName = statementName(sql.claimDue);
  const params = (t: { entityId: string; id: string; version: number }) => [
    streamType,
    t.entityId,
    t.id,
    t.version,
  ];
  return {
    async claimDue(limit: number, entityId: string | null): Promise<ClaimedTimer[]> {
      const rows = await db.query<{
        entity_id: string;
        timer_id: string;
        scheduled_version: string | number;
        event: EventObject;
        correlation_id: string;
        cause_event_id: string;
      }>(sql.claimDue, [streamType, limit, leaseMs, entityId], claimDueName);
      return rows.map((r) => ({
        entityId: r.entity_id,
        id: r.timer_id,
        version: Number(r.scheduled_version),
        event: r.event,
        correlationId: r.correlation_id,
        causeEventId: r.cause_event_id,
      }));
    },
    /** The entity no longer has this timer pending (its state was left): never fire it. */
    async markStale(t: ClaimedTimer): Promise<void> {
      await db.query(sql.stale, params(t));
    },
    /** Firing failed (the database, not the machine): try again shortly. */
    async release(t: ClaimedTimer, error: unknown): Promise<void> {
      await db.query(sql.release, [...params(t), describeError(error), 1000]);
    },
    async list(entityId: string): Promise<TimerRecord[]> {
      const rows = await db.query<{
        timer_id: string;
        scheduled_version: string | number;
        event: EventObject;
        fire_at: unknown;
        status: TimerRecord['status'];
        settled_version: string | number | null;
      }>(sql.list, [streamType, entityId]);
      return rows.map((r) => ({
        id: r.timer_id,
        scheduledVersion: Number(r.scheduled_version),
        event: r.event,
        fireAt: iso(r.fire_at)!,
        status: r.status,
        settledVersion: r.settled_version === null ? null : Number(r.settled_version),
      }));
    },
  };
}

export type TimerStore = ReturnType<typeof createTimerStore>;
