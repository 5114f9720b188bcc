-- The schema the migrations in this folder produce (pg_dump --schema-only, normalized).
-- Regenerate with: pnpm --filter @evident/eventstore schema:dump

--
--

--
-- Name: evident; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA evident;

--
-- Name: chain_head(bytea, bigint, bytea[]); Type: FUNCTION; Schema: evident; Owner: -
--

CREATE FUNCTION evident.chain_head(base bytea, first_version bigint, contents bytea[]) RETURNS bytea
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  head bytea := coalesce(base, '\x'::bytea);
  version bigint := first_version;
  content bytea;
begin
  foreach content in array contents loop
    head := sha256(head || int8send(version) || content);
    version := version + 1;
  end loop;
  return head;
end;
$$;

--
-- Name: chain_link(bytea, bigint, bytea); Type: FUNCTION; Schema: evident; Owner: -
--

CREATE FUNCTION evident.chain_link(previous bytea, version bigint, content bytea) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select sha256(coalesce(previous, '\x'::bytea) || int8send(version) || content)
$$;

--
-- Name: chain_links(bytea, bigint, bytea[]); Type: FUNCTION; Schema: evident; Owner: -
--

CREATE FUNCTION evident.chain_links(base bytea, first_version bigint, contents bytea[]) RETURNS bytea[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
declare
  head bytea := coalesce(base, '\x'::bytea);
  version bigint := first_version;
  content bytea;
  links bytea[] := '{}';
begin
  foreach content in array contents loop
    head := sha256(head || int8send(version) || content);
    links := links || head;
    version := version + 1;
  end loop;
  return links;
end;
$$;

--
-- Name: chain_step(bytea, bytea, bigint, bytea); Type: FUNCTION; Schema: evident; Owner: -
--

CREATE FUNCTION evident.chain_step(state bytea, base bytea, version bigint, content bytea) RETURNS bytea
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
begin
  return sha256(coalesce(state, base, '\x'::bytea) || int8send(version) || content);
end;
$$;

--
-- Name: checkpoint_of(xid8, bigint); Type: FUNCTION; Schema: evident; Owner: -
--

CREATE FUNCTION evident.checkpoint_of(transaction_id xid8, global_position bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select lpad(to_hex(transaction_id::text::bigint), 16, '0') || ':' || lpad(to_hex(global_position), 16, '0')
$$;

--
-- Name: content_hash(text, text, uuid, text, integer, jsonb, jsonb, text, text, text, text, text, text, timestamp with time zone, timestamp with time zone); Type: FUNCTION; Schema: evident; Owner: -
--

CREATE FUNCTION evident.content_hash(stream_type text, stream_id text, event_id uuid, event_type text, schema_version integer, data jsonb, metadata jsonb, correlation_id text, causation_id text, source text, actor_id text, actor_role text, tenant_id text, occurred_at timestamp with time zone, recorded_at timestamp with time zone) RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  select sha256(convert_to(
    stream_type || chr(31) || stream_id || chr(31) || event_id::text || chr(31) || event_type ||
    chr(31) || schema_version::text || chr(31) || data::text || chr(31) || metadata::text ||
    chr(31) || correlation_id || chr(31) || causation_id || chr(31) || source || chr(31) ||
    actor_id || chr(31) || actor_role || chr(31) || coalesce(tenant_id, '') || chr(31) ||
    ((extract(epoch from occurred_at) * 1000)::int8)::text || chr(31) ||
    ((extract(epoch from recorded_at) * 1000)::int8)::text,
    'UTF8'))
$$;

--
-- Name: current_tenant(); Type: FUNCTION; Schema: evident; Owner: -
--

CREATE FUNCTION evident.current_tenant() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
  select nullif(current_setting('evident.tenant_id', true), '')
$$;

--
-- Name: event_purgeable(text, text, xid8, bigint); Type: FUNCTION; Schema: evident; Owner: -
--

CREATE FUNCTION evident.event_purgeable(stream_type text, stream_id text, transaction_id xid8, global_position bigint) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
  select coalesce(current_setting('evident.purge', true), '') = 'on'
    and p.purge_allowed
    and not exists (
      select 1 from evident.events as e
      where e.stream_type = event_purgeable.stream_type and e.stream_id = event_purgeable.stream_id
        and e.recorded_at >= now() - p.retain_for)
    and evident.in_verified_archive(evident.checkpoint_of(transaction_id, global_position))
  from evident.retention_policy as p
$$;

--
-- Name: in_verified_archive(text); Type: FUNCTION; Schema: evident; Owner: -
--

CREATE FUNCTION evident.in_verified_archive(checkpoint text) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
  select exists (
    select 1
    from (select distinct target from evident.archive_runs) as t
    cross join lateral (
      select r.from_checkpoint, r.verified_at from evident.archive_runs as r
      where r.target = t.target and r.through_checkpoint >= checkpoint collate "C"
      order by r.through_checkpoint
      limit 1
    ) as r
    where r.verified_at is not null and r.from_checkpoint < checkpoint collate "C"
  )
$$;

--
-- Name: events; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.events (
    stream_type text NOT NULL,
    stream_id text NOT NULL,
    stream_version bigint NOT NULL,
    global_position bigint NOT NULL,
    transaction_id xid8 DEFAULT pg_current_xact_id() NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    schema_version integer NOT NULL,
    data jsonb NOT NULL,
    metadata jsonb NOT NULL,
    correlation_id text NOT NULL,
    causation_id text NOT NULL,
    source text NOT NULL,
    actor_id text NOT NULL,
    actor_role text NOT NULL,
    tenant_id text DEFAULT evident.current_tenant(),
    occurred_at timestamp with time zone NOT NULL,
    recorded_at timestamp with time zone DEFAULT date_trunc('milliseconds'::text, now()) NOT NULL,
    hash bytea,
    CONSTRAINT events_schema_version_check CHECK ((schema_version > 0)),
    CONSTRAINT events_stream_version_check CHECK ((stream_version > 0))
);

ALTER TABLE ONLY evident.events FORCE ROW LEVEL SECURITY;

--
-- Name: log_page(xid8, bigint, integer, text[], text[]); Type: FUNCTION; Schema: evident; Owner: -
--

CREATE FUNCTION evident.log_page(after_transaction xid8, after_position bigint, max_rows integer, types text[], stream_types text[]) RETURNS SETOF evident.events
    LANGUAGE plpgsql STABLE
    SET enable_sort TO 'off'
    AS $$
begin
  return query
    select * from evident.events as ev
     where (ev.transaction_id, ev.global_position) > (after_transaction, after_position)
       and (types is null or ev.event_type = any(types))
       and (stream_types is null or ev.stream_type = any(stream_types))
     order by ev.transaction_id, ev.global_position
     limit max_rows;
end;
$$;

--
-- Name: purge_archived_events(integer); Type: FUNCTION; Schema: evident; Owner: -
--

CREATE FUNCTION evident.purge_archived_events(max_streams integer DEFAULT 1000) RETURNS TABLE(streams_removed integer, events_removed bigint)
    LANGUAGE plpgsql
    AS $$
declare
  rules         evident.retention_policy;
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
  select * into strict rules from evident.retention_policy;
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
      from evident.archive_runs as r
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
    select distinct t from evident.archive_runs as r, unnest(r.tenants) as t
    where r.through_checkpoint <= verified
  loop
    perform set_config('evident.tenant_id', coalesce(tenant, ''), true);
    for stream in
      select c.stream_type, c.stream_id, s.version, s.last_hash
      from (
        select e.stream_type, e.stream_id
        from evident.events as e
        where (e.transaction_id, e.global_position) <= (through_tx, through_pos)
          and e.tenant_id is not distinct from tenant
        group by e.stream_type, e.stream_id
        having max(e.recorded_at) < now() - rules.retain_for
      ) as c
      join evident.streams as s using (stream_type, stream_id)
      where not exists (
        select 1 from evident.events as later
        where later.stream_type = c.stream_type and later.stream_id = c.stream_id
          and (later.transaction_id, later.global_position) > (through_tx, through_pos))
      order by c.stream_type, c.stream_id
      limit max_streams - total_streams
    loop
      delete from evident.events as e
      where e.stream_type = stream.stream_type and e.stream_id = stream.stream_id;
      get diagnostics removed = row_count;
      insert into evident.purged_streams (stream_type, stream_id, tenant_id, version, last_hash, events)
      values (stream.stream_type, stream.stream_id, tenant, stream.version, stream.last_hash, removed)
      on conflict (stream_type, stream_id) do update
        set version = excluded.version, last_hash = excluded.last_hash,
            events = evident.purged_streams.events + excluded.events, purged_at = now();
      total_events := total_events + removed;
      total_streams := total_streams + 1;
    end loop;
    exit when total_streams >= max_streams;
  end loop;
  perform set_config('evident.purge', 'off', true);
  perform set_config('evident.tenant_id', coalesce(saved_tenant, ''), true);

  if total_streams > 0 then
    insert into evident.archive_purges (streams, events, retain_for, verified_through)
    values (total_streams, total_events, rules.retain_for, verified);
  end if;
  return query select total_streams, total_events;
end;
$$;

--
-- Name: refuse_event_change(); Type: FUNCTION; Schema: evident; Owner: -
--

CREATE FUNCTION evident.refuse_event_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  if tg_op = 'DELETE'
     and evident.event_purgeable(old.stream_type, old.stream_id, old.transaction_id, old.global_position) then
    return old;
  end if;
  raise exception 'events are append-only: % is refused', tg_op
    using errcode = 'EV001', hint = 'record a new event that corrects or supersedes the old one';
end;
$$;

--
-- Name: refuse_missing_stream(); Type: FUNCTION; Schema: evident; Owner: -
--

CREATE FUNCTION evident.refuse_missing_stream() RETURNS bigint
    LANGUAGE plpgsql
    AS $$
begin
  raise exception 'the stream does not exist' using errcode = 'EV409';
end;
$$;

--
-- Name: chain(bytea, bigint, bytea); Type: AGGREGATE; Schema: evident; Owner: -
--

CREATE AGGREGATE evident.chain(bytea, bigint, bytea) (
    SFUNC = evident.chain_step,
    STYPE = bytea
);

--
-- Name: archive_purges; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.archive_purges (
    id bigint NOT NULL,
    purged_at timestamp with time zone DEFAULT now() NOT NULL,
    purged_by text DEFAULT CURRENT_USER NOT NULL,
    streams integer NOT NULL,
    events bigint NOT NULL,
    retain_for interval NOT NULL,
    verified_through text NOT NULL COLLATE pg_catalog."C"
);

--
-- Name: archive_purges_id_seq; Type: SEQUENCE; Schema: evident; Owner: -
--

ALTER TABLE evident.archive_purges ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME evident.archive_purges_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: archive_runs; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.archive_runs (
    target text NOT NULL,
    run integer NOT NULL,
    from_checkpoint text NOT NULL COLLATE pg_catalog."C",
    through_checkpoint text NOT NULL COLLATE pg_catalog."C",
    older_than timestamp with time zone NOT NULL,
    events bigint NOT NULL,
    files integer NOT NULL,
    tenants text[] NOT NULL,
    manifest_path text NOT NULL,
    manifest_sha256 text NOT NULL,
    started_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone DEFAULT now() NOT NULL,
    verified_at timestamp with time zone,
    CONSTRAINT archive_runs_check CHECK ((from_checkpoint < through_checkpoint)),
    CONSTRAINT archive_runs_events_check CHECK ((events > 0)),
    CONSTRAINT archive_runs_files_check CHECK ((files > 0)),
    CONSTRAINT archive_runs_run_check CHECK ((run >= 0))
);

--
-- Name: data_keys; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.data_keys (
    key_id uuid NOT NULL,
    subject_hash bytea NOT NULL,
    tenant_id text DEFAULT evident.current_tenant(),
    kek_id text NOT NULL,
    wrapped_key bytea,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_used_at timestamp with time zone DEFAULT now() NOT NULL,
    shredded_at timestamp with time zone
);

ALTER TABLE ONLY evident.data_keys FORCE ROW LEVEL SECURITY;

--
-- Name: events_global_position_seq; Type: SEQUENCE; Schema: evident; Owner: -
--

ALTER TABLE evident.events ALTER COLUMN global_position ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME evident.events_global_position_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: integrity_checkpoint_heads; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.integrity_checkpoint_heads (
    checkpoint_id bigint NOT NULL,
    stream_type text NOT NULL,
    stream_id text NOT NULL,
    version bigint NOT NULL,
    hash bytea NOT NULL
);

--
-- Name: integrity_checkpoints; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.integrity_checkpoints (
    id bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    key_id text NOT NULL,
    stream_count integer NOT NULL,
    digest bytea NOT NULL,
    signature bytea NOT NULL
);

--
-- Name: integrity_checkpoints_id_seq; Type: SEQUENCE; Schema: evident; Owner: -
--

ALTER TABLE evident.integrity_checkpoints ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME evident.integrity_checkpoints_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: migrations; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.migrations (
    component text NOT NULL,
    id integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    breaking boolean NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: parked_events; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.parked_events (
    id bigint NOT NULL,
    subscription text NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    checkpoint text NOT NULL,
    error jsonb NOT NULL,
    attempts integer NOT NULL,
    parked_at timestamp with time zone DEFAULT now() NOT NULL,
    status text DEFAULT 'parked'::text NOT NULL,
    resolved_at timestamp with time zone,
    resolved_by text,
    resolution_reason text,
    CONSTRAINT parked_events_status_check CHECK ((status = ANY (ARRAY['parked'::text, 'retried'::text, 'skipped'::text])))
);

--
-- Name: parked_events_id_seq; Type: SEQUENCE; Schema: evident; Owner: -
--

ALTER TABLE evident.parked_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME evident.parked_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: projections; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.projections (
    name text NOT NULL,
    live_version integer NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: purged_streams; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.purged_streams (
    stream_type text NOT NULL,
    stream_id text NOT NULL,
    tenant_id text,
    version bigint NOT NULL,
    last_hash bytea,
    events bigint NOT NULL,
    purged_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: retention_policy; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.retention_policy (
    singleton boolean DEFAULT true NOT NULL,
    retain_for interval DEFAULT '7 years'::interval NOT NULL,
    purge_allowed boolean DEFAULT false NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_by text DEFAULT CURRENT_USER NOT NULL,
    CONSTRAINT retention_policy_retain_for_check CHECK ((retain_for > '00:00:00'::interval)),
    CONSTRAINT retention_policy_singleton_check CHECK (singleton)
);

--
-- Name: snapshots; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.snapshots (
    stream_type text NOT NULL,
    stream_id text NOT NULL,
    name text NOT NULL,
    schema_version integer NOT NULL,
    stream_version bigint NOT NULL,
    state jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    tenant_id text DEFAULT evident.current_tenant()
);

ALTER TABLE ONLY evident.snapshots FORCE ROW LEVEL SECURITY;

--
-- Name: streams; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.streams (
    stream_type text NOT NULL,
    stream_id text NOT NULL,
    version bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    tenant_id text DEFAULT evident.current_tenant(),
    last_hash bytea,
    chain_base bytea,
    CONSTRAINT streams_version_check CHECK ((version > 0))
)
WITH (fillfactor='70');

ALTER TABLE ONLY evident.streams FORCE ROW LEVEL SECURITY;

--
-- Name: subscriptions; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.subscriptions (
    name text NOT NULL,
    checkpoint text NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: archive_purges archive_purges_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.archive_purges
    ADD CONSTRAINT archive_purges_pkey PRIMARY KEY (id);

--
-- Name: archive_runs archive_runs_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.archive_runs
    ADD CONSTRAINT archive_runs_pkey PRIMARY KEY (target, run);

--
-- Name: archive_runs archive_runs_target_from_checkpoint_key; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.archive_runs
    ADD CONSTRAINT archive_runs_target_from_checkpoint_key UNIQUE (target, from_checkpoint);

--
-- Name: archive_runs archive_runs_target_through_checkpoint_key; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.archive_runs
    ADD CONSTRAINT archive_runs_target_through_checkpoint_key UNIQUE (target, through_checkpoint);

--
-- Name: data_keys data_keys_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.data_keys
    ADD CONSTRAINT data_keys_pkey PRIMARY KEY (key_id);

--
-- Name: events events_event_id_key; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.events
    ADD CONSTRAINT events_event_id_key UNIQUE (event_id);

--
-- Name: events events_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (stream_type, stream_id, stream_version);

--
-- Name: integrity_checkpoint_heads integrity_checkpoint_heads_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.integrity_checkpoint_heads
    ADD CONSTRAINT integrity_checkpoint_heads_pkey PRIMARY KEY (checkpoint_id, stream_type, stream_id);

--
-- Name: integrity_checkpoints integrity_checkpoints_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.integrity_checkpoints
    ADD CONSTRAINT integrity_checkpoints_pkey PRIMARY KEY (id);

--
-- Name: migrations migrations_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.migrations
    ADD CONSTRAINT migrations_pkey PRIMARY KEY (component, id);

--
-- Name: parked_events parked_events_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.parked_events
    ADD CONSTRAINT parked_events_pkey PRIMARY KEY (id);

--
-- Name: parked_events parked_events_subscription_event_id_key; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.parked_events
    ADD CONSTRAINT parked_events_subscription_event_id_key UNIQUE (subscription, event_id);

--
-- Name: projections projections_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.projections
    ADD CONSTRAINT projections_pkey PRIMARY KEY (name);

--
-- Name: purged_streams purged_streams_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.purged_streams
    ADD CONSTRAINT purged_streams_pkey PRIMARY KEY (stream_type, stream_id);

--
-- Name: retention_policy retention_policy_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.retention_policy
    ADD CONSTRAINT retention_policy_pkey PRIMARY KEY (singleton);

--
-- Name: snapshots snapshots_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.snapshots
    ADD CONSTRAINT snapshots_pkey PRIMARY KEY (stream_type, stream_id, name);

--
-- Name: streams streams_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.streams
    ADD CONSTRAINT streams_pkey PRIMARY KEY (stream_type, stream_id);

--
-- Name: subscriptions subscriptions_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.subscriptions
    ADD CONSTRAINT subscriptions_pkey PRIMARY KEY (name);

--
-- Name: data_keys_subject_idx; Type: INDEX; Schema: evident; Owner: -
--

CREATE UNIQUE INDEX data_keys_subject_idx ON evident.data_keys USING btree (COALESCE(tenant_id, ''::text), subject_hash);

--
-- Name: events_correlation_idx; Type: INDEX; Schema: evident; Owner: -
--

CREATE INDEX events_correlation_idx ON evident.events USING btree (correlation_id, global_position);

--
-- Name: events_log_idx; Type: INDEX; Schema: evident; Owner: -
--

CREATE INDEX events_log_idx ON evident.events USING btree (transaction_id, global_position);

--
-- Name: parked_events_open_idx; Type: INDEX; Schema: evident; Owner: -
--

CREATE INDEX parked_events_open_idx ON evident.parked_events USING btree (subscription, id) WHERE (status = 'parked'::text);

--
-- Name: events events_refuse_truncate; Type: TRIGGER; Schema: evident; Owner: -
--

CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON evident.events FOR EACH STATEMENT EXECUTE FUNCTION evident.refuse_event_change();

--
-- Name: events events_refuse_update_delete; Type: TRIGGER; Schema: evident; Owner: -
--

CREATE TRIGGER events_refuse_update_delete BEFORE DELETE OR UPDATE ON evident.events FOR EACH ROW EXECUTE FUNCTION evident.refuse_event_change();

--
-- Name: integrity_checkpoint_heads integrity_checkpoint_heads_checkpoint_id_fkey; Type: FK CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.integrity_checkpoint_heads
    ADD CONSTRAINT integrity_checkpoint_heads_checkpoint_id_fkey FOREIGN KEY (checkpoint_id) REFERENCES evident.integrity_checkpoints(id);

--
-- Name: events auditor_reads_all; Type: POLICY; Schema: evident; Owner: -
--

CREATE POLICY auditor_reads_all ON evident.events FOR SELECT TO evident_auditor USING (true);

--
-- Name: snapshots auditor_reads_all; Type: POLICY; Schema: evident; Owner: -
--

CREATE POLICY auditor_reads_all ON evident.snapshots FOR SELECT TO evident_auditor USING (true);

--
-- Name: streams auditor_reads_all; Type: POLICY; Schema: evident; Owner: -
--

CREATE POLICY auditor_reads_all ON evident.streams FOR SELECT TO evident_auditor USING (true);

--
-- Name: data_keys; Type: ROW SECURITY; Schema: evident; Owner: -
--

ALTER TABLE evident.data_keys ENABLE ROW LEVEL SECURITY;

--
-- Name: events; Type: ROW SECURITY; Schema: evident; Owner: -
--

ALTER TABLE evident.events ENABLE ROW LEVEL SECURITY;

--
-- Name: snapshots; Type: ROW SECURITY; Schema: evident; Owner: -
--

ALTER TABLE evident.snapshots ENABLE ROW LEVEL SECURITY;

--
-- Name: streams; Type: ROW SECURITY; Schema: evident; Owner: -
--

ALTER TABLE evident.streams ENABLE ROW LEVEL SECURITY;

--
-- Name: data_keys tenant_isolation; Type: POLICY; Schema: evident; Owner: -
--

CREATE POLICY tenant_isolation ON evident.data_keys USING ((NOT (tenant_id IS DISTINCT FROM evident.current_tenant()))) WITH CHECK ((NOT (tenant_id IS DISTINCT FROM evident.current_tenant())));

--
-- Name: events tenant_isolation; Type: POLICY; Schema: evident; Owner: -
--

CREATE POLICY tenant_isolation ON evident.events USING ((NOT (tenant_id IS DISTINCT FROM evident.current_tenant()))) WITH CHECK ((NOT (tenant_id IS DISTINCT FROM evident.current_tenant())));

--
-- Name: snapshots tenant_isolation; Type: POLICY; Schema: evident; Owner: -
--

CREATE POLICY tenant_isolation ON evident.snapshots USING ((NOT (tenant_id IS DISTINCT FROM evident.current_tenant()))) WITH CHECK ((NOT (tenant_id IS DISTINCT FROM evident.current_tenant())));

--
-- Name: streams tenant_isolation; Type: POLICY; Schema: evident; Owner: -
--

CREATE POLICY tenant_isolation ON evident.streams USING ((NOT (tenant_id IS DISTINCT FROM evident.current_tenant()))) WITH CHECK ((NOT (tenant_id IS DISTINCT FROM evident.current_tenant())));

--
--
