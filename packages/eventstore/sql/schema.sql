-- The schema the migrations in this folder produce (pg_dump --schema-only, normalized).
-- Regenerate with: pnpm --filter @evident/eventstore schema:dump

--
--

--
-- Name: evident; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA evident;

--
-- Name: chain_link(bytea, bigint, bytea); Type: FUNCTION; Schema: evident; Owner: -
--

CREATE FUNCTION evident.chain_link(previous bytea, version bigint, content bytea) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select sha256(coalesce(previous, '\x'::bytea) || int8send(version) || content)
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
-- Name: refuse_event_change(); Type: FUNCTION; Schema: evident; Owner: -
--

CREATE FUNCTION evident.refuse_event_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
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
