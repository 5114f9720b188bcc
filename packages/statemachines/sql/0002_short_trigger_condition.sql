-- 0002: the effects trigger's WHEN condition is one test, and the function checks the type.
--
-- PostgreSQL reads a row trigger's WHEN condition back from its serialized form and prepares it
-- at the start of every INSERT into the table, whatever the stream. 0001's condition (the
-- `effects` field and a list of two event types, a text array constant) cost every append about
-- 6 µs of server time more than the single `effects` test does; only records with effects reach
-- the function, which now checks their type itself.
--
-- {{schema}} and {{app_role}} are replaced by quoted identifiers before this file runs.

create or replace function {{schema}}.machine_effects() returns trigger
language plpgsql as $$
declare
  effects jsonb := new.data -> 'effects';
begin
  -- Another package's or a user's event may carry an `effects` field too.
  if new.event_type not in ('StateTransitioned', 'TransitionRejected') then
    return null;
  end if;
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

drop trigger machine_effects on {{schema}}.events;
create trigger machine_effects
  after insert on {{schema}}.events
  for each row
  when (new.data ? 'effects')
  execute function {{schema}}.machine_effects();
