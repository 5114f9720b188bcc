-- 0003 archive: what was archived where (so a run continues where the last one ended and never
-- writes an event twice), the retention policy, and the only way events ever leave the store: a
-- purge of whole streams past their retention period that a verified archive already holds.
--
-- Written to apply before or after 0004 (tenancy): it creates the auditor role if it is missing
-- and names the tenant setting directly rather than through current_tenant().

-- The auditor (created here too, the same way 0004 does): archive runs read every tenant.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = {{auditor_role_literal}}) then
    execute 'create role ' || quote_ident({{auditor_role_literal}}) || ' nologin';
  end if;
end;
$$;

-- A checkpoint as the store formats it: transaction id and position, 16 hex digits each. Text
-- order is log order (compared with collate "C").
create function {{schema}}.checkpoint_of(transaction_id xid8, global_position bigint) returns text
language sql immutable parallel safe as $$
  select lpad(to_hex(transaction_id::text::bigint), 16, '0') || ':' || lpad(to_hex(global_position), 16, '0')
$$;

-- One row per archive run and target. Each run holds exactly the log between its from (exclusive)
-- and through (inclusive) checkpoints; a target's runs follow each other without gap or overlap.
create table {{schema}}.archive_runs (
  -- The target's id: file:///path or s3://bucket/prefix (or a name the caller chose).
  target             text        not null,
  run                integer     not null check (run >= 0),
  from_checkpoint    text        collate "C" not null,
  through_checkpoint text        collate "C" not null,
  -- The run archived events recorded before this instant (and stopped at the first one after).
  older_than         timestamptz not null,
  events             bigint      not null check (events > 0),
  files              integer     not null check (files > 0),
  -- Tenants whose events the run holds (null for events without one): the purge visits these.
  tenants            text[]      not null,
  manifest_path      text        not null,
  manifest_sha256    text        not null,
  started_at         timestamptz not null,
  finished_at        timestamptz not null default now(),
  -- Set by verifyArchive when every file matched its checksum and every row the store still has.
  verified_at        timestamptz,
  primary key (target, run),
  check (from_checkpoint < through_checkpoint),
  -- Runs of a target chain: a second run writing the same stretch of log fails here.
  unique (target, from_checkpoint),
  unique (target, through_checkpoint)
);

-- How long events are kept, and whether anything may ever be removed. Nothing is, by default.
create table {{schema}}.retention_policy (
  singleton     boolean     primary key default true check (singleton),
  retain_for    interval    not null default interval '7 years' check (retain_for > interval '0'),
  purge_allowed boolean     not null default false,
  updated_at    timestamptz not null default now(),
  updated_by    text        not null default current_user
);
insert into {{schema}}.retention_policy default values;

-- Streams whose events were purged: their last version and chain head at the time, so the stream
-- row (kept, so the id is never reused) and the hash chain still account for them.
create table {{schema}}.purged_streams (
  stream_type text        not null,
  stream_id   text        not null,
  tenant_id   text,
  version     bigint      not null,
  last_hash   bytea,
  events      bigint      not null,
  purged_at   timestamptz not null default now(),
  primary key (stream_type, stream_id)
);

-- Every purge, for the audit trail: who, when, how much, through which verified checkpoint.
create table {{schema}}.archive_purges (
  id                 bigint      generated always as identity primary key,
  purged_at          timestamptz not null default now(),
  purged_by          text        not null default current_user,
  streams            integer     not null,
  events             bigint      not null,
  retain_for         interval    not null,
  verified_through   text        collate "C" not null
);

-- True when a verified run of some target holds the event at `checkpoint`.
create function {{schema}}.in_verified_archive(checkpoint text) returns boolean
language sql stable as $$
  select exists (
    select 1
    from (select distinct target from {{schema}}.archive_runs) as t
    cross join lateral (
      select r.from_checkpoint, r.verified_at from {{schema}}.archive_runs as r
      where r.target = t.target and r.through_checkpoint >= checkpoint collate "C"
      order by r.through_checkpoint
      limit 1
    ) as r
    where r.verified_at is not null and r.from_checkpoint < checkpoint collate "C"
  )
$$;

-- True when a DELETE of this event is allowed: by the purge only (a transaction-local flag it
-- sets), under a policy that allows purging, for an event whose whole stream is past retention,
-- held by a verified archive. Checked per row, so even the owner's hand-written DELETE with the
-- flag on removes nothing else.
create function {{schema}}.event_purgeable(
  stream_type text, stream_id text, transaction_id xid8, global_position bigint
) returns boolean
language sql stable as $$
  select coalesce(current_setting('evident.purge', true), '') = 'on'
    and p.purge_allowed
    and not exists (
      select 1 from {{schema}}.events as e
      where e.stream_type = event_purgeable.stream_type and e.stream_id = event_purgeable.stream_id
        and e.recorded_at >= now() - p.retain_for)
    and {{schema}}.in_verified_archive({{schema}}.checkpoint_of(transaction_id, global_position))
  from {{schema}}.retention_policy as p
$$;

-- The append-only rule of 0001, with the purge as its one exception. UPDATE and TRUNCATE stay
-- refused for everyone.
create or replace function {{schema}}.refuse_event_change() returns trigger
language plpgsql as $$
begin
  if tg_op = 'DELETE'
     and {{schema}}.event_purgeable(old.stream_type, old.stream_id, old.transaction_id, old.global_position) then
    return old;
  end if;
  raise exception 'events are append-only: % is refused', tg_op
    using errcode = 'EV001', hint = 'record a new event that corrects or supersedes the old one';
end;
$$;

-- Remove whole streams whose newest event is past the retention period and whose every event a
-- verified archive holds, at most `max_streams` of them, and say how many streams and events went.
-- Refused unless the retention policy allows purging. Owner only: not granted to anyone.
create function {{schema}}.purge_archived_events(max_streams integer default 1000)
returns table (streams_removed integer, events_removed bigint)
language plpgsql as $$
declare
  rules         {{schema}}.retention_policy;
  verified      text collate "C";
  through_tx    xid8;
  through_pos   bigint;
  tenant        text;
  saved_tenant  text := current_setting('evident.tenant_id', true);
  stream        record;
  removed       bigint;
  total_events  bigint := 0;
  total_streams integer := 0;
begin
  select * into strict rules from {{schema}}.retention_policy;
  if not rules.purge_allowed then
    raise exception 'the retention policy does not allow purging events'
      using errcode = 'EV451', hint = 'set purge_allowed in the retention policy first';
  end if;
  if max_streams is null or max_streams < 1 then
    raise exception 'max_streams must be a positive integer' using errcode = '22023';
  end if;

  -- The furthest checkpoint up to which some target's runs are all verified, from its first run.
  select max(b.through_checkpoint) into verified
  from (
    select a.through_checkpoint,
           bool_and(a.verified and a.chained) over (partition by a.target order by a.run) as ok
    from (
      select r.target, r.run, r.through_checkpoint, r.verified_at is not null as verified,
             r.from_checkpoint = coalesce(
               lag(r.through_checkpoint) over (partition by r.target order by r.run),
               '0000000000000000:0000000000000000') as chained
      from {{schema}}.archive_runs as r
    ) as a
  ) as b
  where b.ok;
  if verified is null then
    return query select 0, 0::bigint;
    return;
  end if;
  through_tx := (('x' || left(verified, 16))::bit(64)::bigint)::text::xid8;
  through_pos := ('x' || right(verified, 16))::bit(64)::bigint;

  perform set_config('evident.purge', 'on', true);
  -- Row-level security (0004) shows the owner one tenant at a time: visit each archived tenant.
  for tenant in
    select distinct t from {{schema}}.archive_runs as r, unnest(r.tenants) as t
    where r.through_checkpoint <= verified
  loop
    perform set_config('evident.tenant_id', coalesce(tenant, ''), true);
    for stream in
      select c.stream_type, c.stream_id, s.version, s.last_hash
      from (
        select e.stream_type, e.stream_id
        from {{schema}}.events as e
        where (e.transaction_id, e.global_position) <= (through_tx, through_pos)
          and e.tenant_id is not distinct from tenant
        group by e.stream_type, e.stream_id
        having max(e.recorded_at) < now() - rules.retain_for
      ) as c
      join {{schema}}.streams as s using (stream_type, stream_id)
      where not exists (
        select 1 from {{schema}}.events as later
        where later.stream_type = c.stream_type and later.stream_id = c.stream_id
          and (later.transaction_id, later.global_position) > (through_tx, through_pos))
      order by c.stream_type, c.stream_id
      limit max_streams - total_streams
    loop
      delete from {{schema}}.events as e
      where e.stream_type = stream.stream_type and e.stream_id = stream.stream_id;
      get diagnostics removed = row_count;
      insert into {{schema}}.purged_streams (stream_type, stream_id, tenant_id, version, last_hash, events)
      values (stream.stream_type, stream.stream_id, tenant, stream.version, stream.last_hash, removed)
      on conflict (stream_type, stream_id) do update
        set version = excluded.version, last_hash = excluded.last_hash,
            events = {{schema}}.purged_streams.events + excluded.events, purged_at = now();
      total_events := total_events + removed;
      total_streams := total_streams + 1;
    end loop;
    exit when total_streams >= max_streams;
  end loop;
  perform set_config('evident.purge', 'off', true);
  perform set_config('evident.tenant_id', coalesce(saved_tenant, ''), true);

  if total_streams > 0 then
    insert into {{schema}}.archive_purges (streams, events, retain_for, verified_through)
    values (total_streams, total_events, rules.retain_for, verified);
  end if;
  return query select total_streams, total_events;
end;
$$;

-- Nobody but the owner may purge or change the policy; the auditor archives and verifies.
revoke all on function {{schema}}.purge_archived_events(integer) from public;
grant usage on schema {{schema}} to {{auditor_role}};
grant select, insert on {{schema}}.archive_runs to {{auditor_role}};
grant update (verified_at) on {{schema}}.archive_runs to {{auditor_role}};
grant select on {{schema}}.retention_policy, {{schema}}.purged_streams, {{schema}}.archive_purges
  to {{auditor_role}};
