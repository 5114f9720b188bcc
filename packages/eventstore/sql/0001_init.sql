-- 0001 init: streams, the append-only events table, snapshots, and the least-privilege
-- application role. (Appends are single statements built in src/appendSql.ts.)
--
-- {{schema}} and {{app_role}} are replaced by quoted identifiers, {{app_role_literal}} by a quoted
-- string literal, before this file runs; nothing else is ever interpolated.

create table {{schema}}.streams (
  stream_type text        not null,
  stream_id   text        not null,
  -- Version of the stream's last event; a stream exists once it has one event.
  version     bigint      not null check (version > 0),
  created_at  timestamptz not null default now(),
  primary key (stream_type, stream_id)
);

create table {{schema}}.events (
  stream_type     text        not null,
  stream_id       text        not null,
  stream_version  bigint      not null check (stream_version > 0),
  -- Position in the global log. Readers order by (transaction_id, global_position) and never read
  -- past the oldest transaction still running, so a late commit cannot be skipped; see readAll.
  global_position bigint      not null generated always as identity,
  transaction_id  xid8        not null default pg_current_xact_id(),
  event_id        uuid        not null,
  event_type      text        not null,
  schema_version  integer     not null check (schema_version > 0),
  data            jsonb       not null,
  metadata        jsonb       not null,
  correlation_id  text        not null,
  causation_id    text        not null,
  source          text        not null,
  actor_id        text        not null,
  actor_role      text        not null,
  tenant_id       text,
  occurred_at     timestamptz not null,
  -- Database time, so a skewed application clock cannot reorder the audit trail. Kept to the
  -- millisecond, the precision clients see, so "state at T" means the same in SQL and in code.
  recorded_at     timestamptz not null default date_trunc('milliseconds', now()),
  constraint events_pkey primary key (stream_type, stream_id, stream_version),
  constraint events_event_id_key unique (event_id)
);

create index events_log_idx on {{schema}}.events (transaction_id, global_position);
create index events_correlation_idx on {{schema}}.events (correlation_id, global_position);

create table {{schema}}.snapshots (
  stream_type    text        not null,
  stream_id      text        not null,
  name           text        not null,
  -- Version of the state's own shape; a snapshot of another shape is ignored, not trusted.
  schema_version integer     not null,
  -- The last stream version folded into the state.
  stream_version bigint      not null,
  state          jsonb       not null,
  created_at     timestamptz not null default now(),
  primary key (stream_type, stream_id, name)
);

-- The audit trail is the data model: history is never rewritten by anyone who goes through the
-- tables, whatever their privileges. (Tampering below this level is what integrity checks find.)
create function {{schema}}.refuse_event_change() returns trigger
language plpgsql as $$
begin
  raise exception 'events are append-only: % is refused', tg_op
    using errcode = 'EV001', hint = 'record a new event that corrects or supersedes the old one';
end;
$$;

create trigger events_refuse_update_delete
  before update or delete on {{schema}}.events
  for each row execute function {{schema}}.refuse_event_change();

create trigger events_refuse_truncate
  before truncate on {{schema}}.events
  for each statement execute function {{schema}}.refuse_event_change();

-- The role services connect as (through a login role granted this one): it can append and read,
-- never change or remove history. See the package README, "Roles".
do $$
begin
  if not exists (select 1 from pg_roles where rolname = {{app_role_literal}}) then
    execute 'create role ' || quote_ident({{app_role_literal}}) || ' nologin';
  end if;
end;
$$;

grant usage on schema {{schema}} to {{app_role}};
grant select, insert on {{schema}}.events to {{app_role}};
grant select, insert, update on {{schema}}.streams to {{app_role}};
-- Snapshots are a cache of folded state, not history: they may be replaced and dropped.
grant select, insert, update, delete on {{schema}}.snapshots to {{app_role}};
