-- What this package's migrations add to the store's schema (normalized).
-- Regenerate with: pnpm --filter @evident/adapters schema:dump

--
--

--
-- Name: inbox; Type: TABLE; Schema: evident; Owner: -
--

CREATE TABLE evident.inbox (
    consumer text NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    processed_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT inbox_consumer_check CHECK (((length(consumer) >= 1) AND (length(consumer) <= 100)))
);

--
-- Name: inbox inbox_pkey; Type: CONSTRAINT; Schema: evident; Owner: -
--

ALTER TABLE ONLY evident.inbox
    ADD CONSTRAINT inbox_pkey PRIMARY KEY (consumer, event_id);

--
-- Name: inbox_processed_at_idx; Type: INDEX; Schema: evident; Owner: -
--

CREATE INDEX inbox_processed_at_idx ON evident.inbox USING btree (processed_at);

--
--
