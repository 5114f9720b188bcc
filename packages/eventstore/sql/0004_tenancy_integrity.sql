-- 0004 tenancy and integrity: a tenant on every stream, event and snapshot, enforced by row-level
-- security (enabled and forced, so the owner is held to it too); a per-stream SHA-256 hash chain;
-- signed checkpoints of chain heads; an auditor role that reads across tenants.

-- The tenant of the current transaction, set by the store with set_config(..., true) so that a
-- pooled connection never carries it into the next request. Empty or unset: no tenant.
create function {{schema}}.current_tenant() returns text
language sql stable parallel safe as $$
  select nullif(current_setting('evident.tenant_id', true), '')
$$;

alter table {{schema}}.streams add column tenant_id text default {{schema}}.current_tenant();
-- Hash of the stream's last event, and of the one before the latest append (the batch's base).
alter table {{schema}}.streams add column last_hash bytea;
alter table {{schema}}.streams add column chain_base bytea;
-- Every append rewrites its stream's row; room on the page keeps those updates HOT (no index
-- maintenance) now that the row carries two hashes.
alter table {{schema}}.streams set (fillfactor = 70);
alter table {{schema}}.snapshots add column tenant_id text default {{schema}}.current_tenant();
alter table {{schema}}.events alter column tenant_id set default {{schema}}.current_tenant();
-- chain_link(previous event's hash, version, content_hash(event)); see below.
alter table {{schema}}.events add column hash bytea;

-- What an event's hash covers: every stored field, its stream, version and database time, the
-- payload as stored (ciphertext where fields are encrypted, so verifying needs no keys).
--
-- Two levels, so a batch hashes each event's (large) content once: content_hash is sha256 of the
-- event's fields joined with the unit separator (which no allow-listed field and no jsonb text
-- can contain), everything but its version; the chain link is
--   hash = sha256(previous hash || version as 8 bytes || content_hash).
-- Appends and the verifier call the same functions, so they cannot disagree.
create function {{schema}}.content_hash(
  stream_type text, stream_id text, event_id uuid, event_type text, schema_version integer,
  data jsonb, metadata jsonb, correlation_id text, causation_id text, source text,
  actor_id text, actor_role text, tenant_id text, occurred_at timestamptz, recorded_at timestamptz
) returns bytea
language sql stable parallel safe as $$
  select sha256(convert_to(
    stream_type || chr(31) || stream_id || chr(31) || event_id::text || chr(31) || event_type ||
    chr(31) || schema_version::text || chr(31) || data::text || chr(31) || metadata::text ||
    chr(31) || correlation_id || chr(31) || causation_id || chr(31) || source || chr(31) ||
    actor_id || chr(31) || actor_role || chr(31) || coalesce(tenant_id, '') || chr(31) ||
    ((extract(epoch from occurred_at) * 1000)::int8)::text || chr(31) ||
    ((extract(epoch from recorded_at) * 1000)::int8)::text,
    'UTF8'))
$$;

create function {{schema}}.chain_link(previous bytea, version bigint, content bytea) returns bytea
language sql immutable parallel safe as $$
  select sha256(coalesce(previous, '\x'::bytea) || int8send(version) || content)
$$;

-- The chain over a batch as an aggregate (and as a window function, each event's own hash):
-- the state starts at the stream's last hash (`base`).
create function {{schema}}.chain_step(state bytea, base bytea, version bigint, content bytea)
returns bytea
language plpgsql immutable parallel safe as $$
begin
  return sha256(coalesce(state, base, '\x'::bytea) || int8send(version) || content);
end;
$$;

create aggregate {{schema}}.chain(bytea, bigint, bytea) (
  sfunc = {{schema}}.chain_step,
  stype = bytea
);

-- Refuses an append whose expectation ("the stream exists") did not hold, from inside the append
-- statement (see src/appendSql.ts). Only called on that path.
create function {{schema}}.refuse_missing_stream() returns bigint
language plpgsql as $$
begin
  raise exception 'the stream does not exist' using errcode = 'EV409';
end;
$$;

-- Row-level security. A store made for a tenant sees and writes only that tenant's rows; a store
-- without a tenant only rows without one. Nobody reads across tenants but the auditor role.
alter table {{schema}}.events enable row level security;
alter table {{schema}}.events force row level security;
alter table {{schema}}.streams enable row level security;
alter table {{schema}}.streams force row level security;
alter table {{schema}}.snapshots enable row level security;
alter table {{schema}}.snapshots force row level security;

create policy tenant_isolation on {{schema}}.events
  using (tenant_id is not distinct from {{schema}}.current_tenant())
  with check (tenant_id is not distinct from {{schema}}.current_tenant());
create policy tenant_isolation on {{schema}}.streams
  using (tenant_id is not distinct from {{schema}}.current_tenant())
  with check (tenant_id is not distinct from {{schema}}.current_tenant());
create policy tenant_isolation on {{schema}}.snapshots
  using (tenant_id is not distinct from {{schema}}.current_tenant())
  with check (tenant_id is not distinct from {{schema}}.current_tenant());

-- The auditor: integrity checks, archive, compliance reports across tenants. Read only.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = {{auditor_role_literal}}) then
    execute 'create role ' || quote_ident({{auditor_role_literal}}) || ' nologin';
  end if;
end;
$$;
grant usage on schema {{schema}} to {{auditor_role}};
grant select on {{schema}}.events, {{schema}}.streams, {{schema}}.snapshots to {{auditor_role}};
create policy auditor_reads_all on {{schema}}.events for select to {{auditor_role}} using (true);
create policy auditor_reads_all on {{schema}}.streams for select to {{auditor_role}} using (true);
create policy auditor_reads_all on {{schema}}.snapshots for select to {{auditor_role}} using (true);

-- Signed checkpoints of every stream's chain head, kept outside the events table: deleting the
-- newest events of a stream (and rewriting `streams` to match) no longer matches a checkpoint
-- signed with a key the database never sees.
create table {{schema}}.integrity_checkpoints (
  id           bigint      generated always as identity primary key,
  created_at   timestamptz not null default now(),
  key_id       text        not null,
  stream_count integer     not null,
  -- sha256 over the heads in (stream type, stream id) order; the signature covers it.
  digest       bytea       not null,
  signature    bytea       not null
);
create table {{schema}}.integrity_checkpoint_heads (
  checkpoint_id bigint not null references {{schema}}.integrity_checkpoints (id),
  stream_type   text   not null,
  stream_id     text   not null,
  version       bigint not null,
  hash          bytea  not null,
  primary key (checkpoint_id, stream_type, stream_id)
);
grant select, insert on {{schema}}.integrity_checkpoints, {{schema}}.integrity_checkpoint_heads
  to {{auditor_role}};
grant execute on function {{schema}}.current_tenant(), {{schema}}.content_hash(text, text, uuid,
  text, integer, jsonb, jsonb, text, text, text, text, text, text, timestamptz, timestamptz),
  {{schema}}.chain_link(bytea, bigint, bytea), {{schema}}.chain_step(bytea, bytea, bigint, bytea),
  {{schema}}.refuse_missing_stream()
  to {{app_role}}, {{auditor_role}};
