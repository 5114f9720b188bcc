-- What this package's migrations add to the store's schema (normalized).
-- Regenerate with: pnpm --filter @evident/statemachines schema:dump

--
--

--
-- Name: machine_jobs; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.machine_jobs (
    stream_type text NOT NULL,
    entity_id text NOT NULL,
    version bigint NOT NULL,
    action_index integer NOT NULL,
    action_type text NOT NULL,
    params jsonb,
    status text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    run_after timestamp with time zone NOT NULL,
    lease_until timestamp with time zone,
    last_error text,
    created_at timestamp with time zone NOT NULL,
    completed_at timestamp with time zone,
    CONSTRAINT machine_jobs_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'running'::text, 'done'::text, 'failed'::text])))
);

--
-- Name: machine_timers; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.machine_timers (
    stream_type text NOT NULL,
    entity_id text NOT NULL,
    timer_id text NOT NULL,
    scheduled_version bigint NOT NULL,
    event jsonb NOT NULL,
    fire_at timestamp with time zone NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    lease_until timestamp with time zone,
    last_error text,
    correlation_id text NOT NULL,
    cause_event_id uuid NOT NULL,
    settled_version bigint,
    CONSTRAINT machine_timers_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'firing'::text, 'fired'::text, 'cancelled'::text, 'stale'::text])))
);

--
-- Name: machine_jobs machine_jobs_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.machine_jobs
    ADD CONSTRAINT machine_jobs_pkey PRIMARY KEY (stream_type, entity_id, version, action_index);

--
-- Name: machine_timers machine_timers_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.machine_timers
    ADD CONSTRAINT machine_timers_pkey PRIMARY KEY (stream_type, entity_id, timer_id, scheduled_version);

--
-- Name: machine_jobs_due_idx; Type: INDEX; Schema: evident; Owner: -
--

CREATE INDEX machine_jobs_due_idx ON evident.machine_jobs USING btree (stream_type, run_after) WHERE (status = ANY (ARRAY['pending'::text, 'running'::text]));

--
-- Name: machine_timers_due_idx; Type: INDEX; Schema: evident; Owner: -
--

CREATE INDEX machine_timers_due_idx ON evident.machine_timers USING btree (stream_type, fire_at) WHERE (status = ANY (ARRAY['pending'::text, 'firing'::text]));

--
--

CREATE OR REPLACE FUNCTION evident.machine_effects()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
declare
  effects jsonb := new.data -> 'effects';
begin
  -- Another package's or a user's event may carry an `effects` field too.
  if new.event_type not in ('StateTransitioned', 'TransitionRejected') then
    return null;
  end if;
  insert into evident.machine_jobs
    (stream_type, entity_id, version, action_index, action_type, params, run_after, created_at)
  select new.stream_type, new.stream_id, new.stream_version, (a ->> 'index')::integer,
         a ->> 'type', a -> 'params', new.recorded_at, new.recorded_at
  from jsonb_array_elements(coalesce(effects -> 'actions', '[]'::jsonb)) as a
  on conflict do nothing;

  update evident.machine_timers as t
     set status = 'fired', settled_version = new.stream_version, lease_until = null
   where t.stream_type = new.stream_type and t.entity_id = new.stream_id
     and t.timer_id = effects #>> '{fired,id}'
     and t.scheduled_version = (effects #>> '{fired,version}')::bigint
     and t.status in ('pending', 'firing');

  update evident.machine_timers as t
     set status = 'cancelled', settled_version = new.stream_version, lease_until = null
    from jsonb_array_elements(coalesce(effects -> 'cancel', '[]'::jsonb)) as c
   where t.stream_type = new.stream_type and t.entity_id = new.stream_id
     and t.timer_id = c ->> 'id' and t.scheduled_version = (c ->> 'version')::bigint
     and t.status in ('pending', 'firing');

  insert into evident.machine_timers
    (stream_type, entity_id, timer_id, scheduled_version, event, fire_at, correlation_id,
     cause_event_id)
  select new.stream_type, new.stream_id, s ->> 'id', new.stream_version, s -> 'event',
         new.recorded_at + (s ->> 'delay')::bigint * interval '1 millisecond',
         new.correlation_id, new.event_id
  from jsonb_array_elements(coalesce(effects -> 'schedule', '[]'::jsonb)) as s
  on conflict do nothing;
  return null;
end;
$function$
;
CREATE TRIGGER machine_effects AFTER INSERT ON evident.events FOR EACH ROW WHEN ((new.data ? 'effects'::text)) EXECUTE FUNCTION evident.machine_effects();
