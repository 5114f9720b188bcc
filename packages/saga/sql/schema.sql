-- What this package's migrations add to the store's schema (normalized).
-- Regenerate with: pnpm --filter @evident/saga schema:dump

--
--

--
-- Name: saga_instances; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.saga_instances (
    saga_id text NOT NULL,
    saga_name text NOT NULL,
    saga_version integer NOT NULL,
    correlation_id text NOT NULL,
    tenant_id text,
    status text NOT NULL,
    current_step text,
    attempt integer DEFAULT 0 NOT NULL,
    waiting_for text,
    wait_key text,
    due_at timestamp with time zone,
    lease_owner text,
    last_error jsonb,
    stream_version bigint NOT NULL,
    started_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT saga_instances_status_check CHECK ((status = ANY (ARRAY['running'::text, 'sleeping'::text, 'waiting'::text, 'retrying'::text, 'compensating'::text, 'completed'::text, 'compensated'::text, 'dead_lettered'::text, 'resolved'::text])))
);

--
-- Name: saga_instances saga_instances_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.saga_instances
    ADD CONSTRAINT saga_instances_pkey PRIMARY KEY (saga_id);

--
-- Name: saga_instances_correlation_idx; Type: INDEX; Schema: evident; Owner: -
--

CREATE INDEX saga_instances_correlation_idx ON evident.saga_instances USING btree (correlation_id);

--
-- Name: saga_instances_due_idx; Type: INDEX; Schema: evident; Owner: -
--

CREATE INDEX saga_instances_due_idx ON evident.saga_instances USING btree (due_at) WHERE (due_at IS NOT NULL);

--
-- Name: saga_instances_status_idx; Type: INDEX; Schema: evident; Owner: -
--

CREATE INDEX saga_instances_status_idx ON evident.saga_instances USING btree (saga_name, status);

--
-- Name: saga_instances_wait_idx; Type: INDEX; Schema: evident; Owner: -
--

CREATE INDEX saga_instances_wait_idx ON evident.saga_instances USING btree (waiting_for, wait_key) WHERE (status = 'waiting'::text);

--
--

CREATE OR REPLACE FUNCTION evident.saga_progress()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
declare
  d jsonb := new.data;
  t text := new.event_type;
begin
  if t = 'SagaStarted' then
    -- Due at once for any worker, or held by the starting worker (which runs it straight away)
    -- for one lease; if that worker dies, the lease expires and another takes the instance.
    insert into evident.saga_instances as i
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
    update evident.saga_instances as i
       set status = case when t = 'CompensationStarted' then 'compensating' else 'running' end,
           current_step = d ->> 'step', attempt = (d ->> 'attempt')::integer,
           waiting_for = null, wait_key = null,
           stream_version = new.stream_version, updated_at = new.recorded_at
     where i.saga_id = new.stream_id;
  elsif t in ('StepFailed', 'CompensationFailed') then
    update evident.saga_instances as i
       set last_error = d -> 'error',
           stream_version = new.stream_version, updated_at = new.recorded_at
     where i.saga_id = new.stream_id;
  elsif t = 'SagaWaiting' then
    -- The instance parks: released, due again at its earliest wake-up (null: only a signal).
    update evident.saga_instances as i
       set status = d ->> 'status', current_step = d ->> 'step',
           waiting_for = d ->> 'waitingFor', wait_key = d ->> 'waitKey',
           due_at = least((d ->> 'until')::timestamptz,
                          new.recorded_at + (d ->> 'delayMs')::bigint * interval '1 millisecond'),
           lease_owner = null,
           stream_version = new.stream_version, updated_at = new.recorded_at
     where i.saga_id = new.stream_id;
  elsif t in ('TimerFired', 'WaitCompleted', 'WaitTimedOut') then
    update evident.saga_instances as i
       set status = case when i.status = 'compensating' then i.status else 'running' end,
           waiting_for = null, wait_key = null,
           stream_version = new.stream_version, updated_at = new.recorded_at
     where i.saga_id = new.stream_id;
  elsif t = 'SignalReceived' then
    -- A waiting instance is due at once; any other keeps its schedule (the worker holding it,
    -- or the next one, reads the signal from the stream).
    update evident.saga_instances as i
       set due_at = case when i.status = 'waiting' then new.recorded_at else i.due_at end,
           stream_version = new.stream_version, updated_at = new.recorded_at
     where i.saga_id = new.stream_id;
  elsif t in ('SagaCompleted', 'SagaCompensated', 'SagaDeadLettered', 'ManuallyResolved') then
    update evident.saga_instances as i
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
    update evident.saga_instances as i
       set status = d ->> 'status', attempt = 0, due_at = new.recorded_at, lease_owner = null,
           stream_version = new.stream_version, updated_at = new.recorded_at
     where i.saga_id = new.stream_id;
  elsif t = 'SagaMigrated' then
    update evident.saga_instances as i
       set saga_version = (d ->> 'to')::integer,
           stream_version = new.stream_version, updated_at = new.recorded_at
     where i.saga_id = new.stream_id;
  end if;
  -- Other events (a step's success, a condition's value, a timer scheduled before the instance
  -- parks) change nothing an operator filters on: the row is left alone, which halves the writes
  -- of a step.
  return null;
end;
$function$
;
CREATE OR REPLACE FUNCTION evident.due_instances(due_by timestamp with time zone, names text[], versions integer[], max_rows integer)
 RETURNS SETOF text
 LANGUAGE plpgsql
 SET enable_sort TO 'off'
AS $function$
begin
  return query
    select i.saga_id from evident.saga_instances as i
     where i.due_at <= due_by
       and (i.saga_name, i.saga_version) in (select * from unnest(names, versions))
     order by i.due_at
     limit max_rows
     for update skip locked;
end;
$function$
;
CREATE TRIGGER saga_progress AFTER INSERT ON evident.events FOR EACH ROW WHEN ((new.stream_type = 'saga'::text)) EXECUTE FUNCTION evident.saga_progress();
