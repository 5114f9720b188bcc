-- 0001 init: the saga work table of @evident/saga.
--
-- A saga instance's history is its stream in the store's events table (stream type 'saga'); this
-- table is only what workers need to share instances: one row per instance with its state, when
-- it is next due, and who holds it. The row is written by a trigger on the events table, inside
-- the very statement that appends the instance's events, so the row and the stream can never
-- disagree: a step's events and its row change commit together or not at all. Leases (claim,
-- renewal, release on shutdown) are the only writes that go to the row directly.
--
-- {{schema}} and {{app_role}} are replaced by quoted identifiers before this file runs.

create table {{schema}}.saga_instances (
  saga_id         text        primary key,
  saga_name       text        not null,
  saga_version    integer     not null,
  correlation_id  text        not null,
  tenant_id       text,
  status          text        not null
                  check (status in ('running', 'sleeping', 'waiting', 'retrying', 'compensating',
                                    'completed', 'compensated', 'dead_lettered', 'resolved')),
  -- The step (or timer, or wait) the instance is at, for operators.
  current_step    text,
  attempt         integer     not null default 0,
  -- Event type a waiting instance waits for, and the key it was correlated with.
  waiting_for     text,
  wait_key        text,
  -- When a worker should next look at the instance, in database time: at once for a runnable
  -- instance, the wake-up time of a sleeping or waiting one, the lease expiry of one a worker
  -- holds. Null when nothing is due: final, dead-lettered, or waiting for a signal without end.
  -- A sleeping instance costs this row and nothing else.
  due_at          timestamptz,
  -- The worker holding the instance; its lease ends at due_at.
  lease_owner     text,
  last_error      jsonb,
  -- Stream version of the instance's last change of state (its stream, not this row, is the
  -- fencing token of every append: each one expects the version its worker last wrote).
  stream_version  bigint      not null,
  started_at      timestamptz not null,
  -- Database time of the last change of state.
  updated_at      timestamptz not null
);

-- Workers claim due rows in due order with FOR UPDATE SKIP LOCKED.
create index saga_instances_due_idx on {{schema}}.saga_instances (due_at)
  where due_at is not null;
-- Operators list and count by saga and state. (Not by step: an index on current_step would make
-- every step's update of the row a non-HOT update, the main cost of a step.)
create index saga_instances_status_idx on {{schema}}.saga_instances (saga_name, status);
-- Routing an external event to the instances waiting for it.
create index saga_instances_wait_idx on {{schema}}.saga_instances (waiting_for, wait_key)
  where status = 'waiting';
create index saga_instances_correlation_idx on {{schema}}.saga_instances (correlation_id);

create function {{schema}}.saga_progress() returns trigger
language plpgsql as $$
declare
  d jsonb := new.data;
  t text := new.event_type;
begin
  if t = 'SagaStarted' then
    -- Due at once for any worker, or held by the starting worker (which runs it straight away)
    -- for one lease; if that worker dies, the lease expires and another takes the instance.
    insert into {{schema}}.saga_instances as i
      (saga_id, saga_name, saga_version, correlation_id, tenant_id, status, due_at, lease_owner,
       stream_version, started_at, updated_at)
    values (new.stream_id, d ->> 'saga', (d ->> 'version')::integer, new.correlation_id,
            new.tenant_id, 'running',
            case when d -> 'worker' is null or d -> 'worker' = 'null'::jsonb then new.recorded_at
                 else coalesce((d #>> '{worker,until}')::timestamptz,
                               new.recorded_at + (d #>> '{worker,leaseMs}')::bigint
                                 * interval '1 millisecond') end,
            d #>> '{worker,id}', new.stream_version, new.recorded_at, new.recorded_at);
  elsif t in ('StepStarted', 'CompensationStarted', 'StepSucceeded') then
    -- A step's success may carry the next step's start (one row per step boundary).
    if t = 'StepSucceeded' then
      d := d -> 'next' -> -1;
    end if;
    update {{schema}}.saga_instances as i
       set status = case when t = 'CompensationStarted' then 'compensating' else 'running' end,
           current_step = d ->> 'step', attempt = (d ->> 'attempt')::integer,
           waiting_for = null, wait_key = null,
           stream_version = new.stream_version, updated_at = new.recorded_at
     where i.saga_id = new.stream_id;
  elsif t in ('StepFailed', 'CompensationFailed') then
    update {{schema}}.saga_instances as i
       set last_error = d -> 'error',
           stream_version = new.stream_version, updated_at = new.recorded_at
     where i.saga_id = new.stream_id;
  elsif t = 'SagaWaiting' then
    -- The instance parks: released, due again at its earliest wake-up (null: only a signal).
    update {{schema}}.saga_instances as i
       set status = d ->> 'status', current_step = d ->> 'step',
           waiting_for = d ->> 'waitingFor', wait_key = d ->> 'waitKey',
           due_at = least((d ->> 'until')::timestamptz,
                          new.recorded_at + (d ->> 'delayMs')::bigint * interval '1 millisecond'),
           lease_owner = null,
           stream_version = new.stream_version, updated_at = new.recorded_at
     where i.saga_id = new.stream_id;
  elsif t in ('TimerFired', 'WaitCompleted', 'WaitTimedOut') then
    update {{schema}}.saga_instances as i
       set status = case when i.status = 'compensating' then i.status else 'running' end,
           waiting_for = null, wait_key = null,
           stream_version = new.stream_version, updated_at = new.recorded_at
     where i.saga_id = new.stream_id;
  elsif t = 'SignalReceived' then
    -- A waiting instance is due at once; any other keeps its schedule (the worker holding it,
    -- or the next one, reads the signal from the stream).
    update {{schema}}.saga_instances as i
       set due_at = case when i.status = 'waiting' then new.recorded_at else i.due_at end,
           stream_version = new.stream_version, updated_at = new.recorded_at
     where i.saga_id = new.stream_id;
  elsif t in ('SagaCompleted', 'SagaCompensated', 'SagaDeadLettered', 'ManuallyResolved') then
    update {{schema}}.saga_instances as i
       set status = case t when 'SagaCompleted' then 'completed'
                           when 'SagaCompensated' then 'compensated'
                           when 'SagaDeadLettered' then 'dead_lettered'
                           else 'resolved' end,
           current_step = case when t = 'SagaDeadLettered' then d #>> '{failurePoint,step}'
                               else i.current_step end,
           last_error = case when t = 'SagaDeadLettered' then d -> 'error' else i.last_error end,
           waiting_for = null, wait_key = null, due_at = null, lease_owner = null,
           stream_version = new.stream_version, updated_at = new.recorded_at
     where i.saga_id = new.stream_id;
  elsif t = 'SagaResumed' then
    -- An operator retried a dead letter: due at once, for any worker.
    update {{schema}}.saga_instances as i
       set status = d ->> 'status', attempt = 0, due_at = new.recorded_at, lease_owner = null,
           stream_version = new.stream_version, updated_at = new.recorded_at
     where i.saga_id = new.stream_id;
  elsif t = 'SagaMigrated' then
    update {{schema}}.saga_instances as i
       set saga_version = (d ->> 'to')::integer,
           stream_version = new.stream_version, updated_at = new.recorded_at
     where i.saga_id = new.stream_id;
  end if;
  -- Other events (a step's success, a condition's value, a timer scheduled before the instance
  -- parks) change nothing an operator filters on: the row is left alone, which halves the writes
  -- of a step.
  return null;
end;
$$;

-- Only the saga events that change the row reach the function: every other append pays for one
-- WHEN test.
create trigger saga_progress
  after insert on {{schema}}.events
  for each row
  when (new.stream_type = 'saga' and (new.event_type in (
    'SagaStarted', 'StepStarted', 'CompensationStarted', 'StepFailed', 'CompensationFailed',
    'SagaWaiting', 'TimerFired', 'WaitCompleted', 'WaitTimedOut', 'SignalReceived',
    'SagaCompleted', 'SagaCompensated', 'SagaDeadLettered', 'ManuallyResolved', 'SagaResumed',
    'SagaMigrated') or (new.event_type = 'StepSucceeded' and new.data ? 'next')))
  execute function {{schema}}.saga_progress();

-- The application role appends events (which fires the trigger as that role), claims and renews
-- leases. It cannot delete an instance: history and its index are not removed by services.
grant select, insert, update on {{schema}}.saga_instances to {{app_role}};
