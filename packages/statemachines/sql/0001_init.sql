-- 0001 init: durable action jobs and timers of @evident/statemachines.
--
-- Both tables are filled by a trigger on the store's events table, inside the very statement that
-- appends the StateTransitioned (or TransitionRejected) event that schedules them. So a job or a
-- timer exists if and only if the step that created it committed: a crash between the commit and
-- running the action loses nothing, and a lost race creates nothing. Timer deadlines are computed
-- from the event's recorded_at, database time, so a skewed application clock cannot move them.
--
-- {{schema}} and {{app_role}} are replaced by quoted identifiers before this file runs.

create table {{schema}}.machine_jobs (
  stream_type   text        not null,
  entity_id     text        not null,
  -- Stream version of the step that scheduled the action; with action_index, the job's identity
  -- and the idempotency key handed to the action.
  version       bigint      not null,
  action_index  integer     not null,
  action_type   text        not null,
  params        jsonb,
  status        text        not null default 'pending'
                check (status in ('pending', 'running', 'done', 'failed')),
  attempts      integer     not null default 0,
  run_after     timestamptz not null,
  -- A running job whose lease expired belongs to a worker that died: another may take it.
  lease_until   timestamptz,
  last_error    text,
  created_at    timestamptz not null,
  completed_at  timestamptz,
  primary key (stream_type, entity_id, version, action_index)
);

create index machine_jobs_due_idx on {{schema}}.machine_jobs (stream_type, run_after)
  where status in ('pending', 'running');

create table {{schema}}.machine_timers (
  stream_type        text        not null,
  entity_id          text        not null,
  -- XState's send id (e.g. xstate.after.2000.review.inReview) and the step that scheduled it.
  timer_id           text        not null,
  scheduled_version  bigint      not null,
  event              jsonb       not null,
  fire_at            timestamptz not null,
  status             text        not null default 'pending'
                     check (status in ('pending', 'firing', 'fired', 'cancelled', 'stale')),
  attempts           integer     not null default 0,
  lease_until        timestamptz,
  last_error         text,
  -- The workflow the scheduling step belonged to, so the step the timer causes continues it.
  correlation_id     text        not null,
  cause_event_id     uuid        not null,
  -- Stream version of the step that fired or cancelled it.
  settled_version    bigint,
  primary key (stream_type, entity_id, timer_id, scheduled_version)
);

create index machine_timers_due_idx on {{schema}}.machine_timers (stream_type, fire_at)
  where status in ('pending', 'firing');

create function {{schema}}.machine_effects() returns trigger
language plpgsql as $$
declare
  effects jsonb := new.data -> 'effects';
begin
  insert into {{schema}}.machine_jobs
    (stream_type, entity_id, version, action_index, action_type, params, run_after, created_at)
  select new.stream_type, new.stream_id, new.stream_version, (a ->> 'index')::integer,
         a ->> 'type', a -> 'params', new.recorded_at, new.recorded_at
  from jsonb_array_elements(coalesce(effects -> 'actions', '[]'::jsonb)) as a
  on conflict do nothing;

  update {{schema}}.machine_timers as t
     set status = 'fired', settled_version = new.stream_version, lease_until = null
   where t.stream_type = new.stream_type and t.entity_id = new.stream_id
     and t.timer_id = effects #>> '{fired,id}'
     and t.scheduled_version = (effects #>> '{fired,version}')::bigint
     and t.status in ('pending', 'firing');

  update {{schema}}.machine_timers as t
     set status = 'cancelled', settled_version = new.stream_version, lease_until = null
    from jsonb_array_elements(coalesce(effects -> 'cancel', '[]'::jsonb)) as c
   where t.stream_type = new.stream_type and t.entity_id = new.stream_id
     and t.timer_id = c ->> 'id' and t.scheduled_version = (c ->> 'version')::bigint
     and t.status in ('pending', 'firing');

  insert into {{schema}}.machine_timers
    (stream_type, entity_id, timer_id, scheduled_version, event, fire_at, correlation_id,
     cause_event_id)
  select new.stream_type, new.stream_id, s ->> 'id', new.stream_version, s -> 'event',
         new.recorded_at + (s ->> 'delay')::bigint * interval '1 millisecond',
         new.correlation_id, new.event_id
  from jsonb_array_elements(coalesce(effects -> 'schedule', '[]'::jsonb)) as s
  on conflict do nothing;
  return null;
end;
$$;

-- Only this package's records with effects reach the function: every other append pays for one
-- WHEN test and nothing else.
create trigger machine_effects
  after insert on {{schema}}.events
  for each row
  when (new.data ? 'effects' and new.event_type in ('StateTransitioned', 'TransitionRejected'))
  execute function {{schema}}.machine_effects();

-- The application role appends events (which fires the trigger as that role) and runs workers.
grant select, insert, update on {{schema}}.machine_jobs to {{app_role}};
grant select, insert, update on {{schema}}.machine_timers to {{app_role}};
