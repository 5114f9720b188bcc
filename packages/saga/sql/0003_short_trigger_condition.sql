-- 0003: the trigger that keeps the work table in step asks one question before it runs.
--
-- A row trigger's WHEN condition is stored as a serialized expression, and PostgreSQL reads it
-- back (stringToNode) and prepares it at the start of every INSERT into the table: every append,
-- of any stream, paid for it. 0001's condition listed the sixteen event types that change the row
-- as a text array constant, which serializes byte by byte; reading it back was about 7% of the
-- server's time in the saga benchmark (perf) and added tens of microseconds to every append of
-- every stream in the schema. The condition is now only "this is a saga stream", and the function
-- (which already dispatches on the event type and leaves other types alone) also leaves alone a
-- step's success that carries no next start. A saga stream's other events (a condition's value,
-- a timer scheduled) now enter the function and leave it at once; they are a few per instance.
--
-- {{schema}} and {{app_role}} are replaced by quoted identifiers before this file runs.

create or replace function {{schema}}.saga_progress() returns trigger
language plpgsql as $$
declare
  d jsonb := new.data;
  t text := new.event_type;
begin
  if t = 'SagaStarted' then
    -- Due at once for any worker, or held by the starting worker (which runs it straight away)
    -- for one lease; if that worker dies, the lease expires and another takes the instance.
    insert into {{schema}}.saga_instances as i
      (saga_id, saga_name, saga_version, correlation_id, tenant_id, status, current_step, attempt,
       due_at, lease_owner, stream_version, started_at, updated_at)
    values (new.stream_id, d ->> 'saga', (d ->> 'version')::integer, new.correlation_id,
            new.tenant_id, 'running',
            -- The first step's start, when the starting process runs the instance (0002).
            d -> 'next' -> -1 ->> 'step', coalesce((d -> 'next' -> -1 ->> 'attempt')::integer, 0),
            case when d -> 'worker' is null or d -> 'worker' = 'null'::jsonb then new.recorded_at
                 else coalesce((d #>> '{worker,until}')::timestamptz,
                               new.recorded_at + (d #>> '{worker,leaseMs}')::bigint
                                 * interval '1 millisecond') end,
            d #>> '{worker,id}', new.stream_version, new.recorded_at, new.recorded_at);
  elsif t in ('StepStarted', 'CompensationStarted', 'StepSucceeded') then
    -- A step's success may carry the next step's start (one row per step boundary); one that
    -- does not changes nothing an operator filters on.
    if t = 'StepSucceeded' then
      if not d ? 'next' then
        return null;
      end if;
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

drop trigger saga_progress on {{schema}}.events;
create trigger saga_progress
  after insert on {{schema}}.events
  for each row
  when (new.stream_type = 'saga')
  execute function {{schema}}.saga_progress();
