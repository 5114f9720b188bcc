-- 0002 subscriptions: checkpoints per subscription name, parked (dead-lettered) events, and the
-- registry of projection versions.

create table {{schema}}.subscriptions (
  name       text        primary key,
  -- Opaque log checkpoint (see src/checkpoint.ts); compares correctly as text.
  checkpoint text        not null,
  updated_at timestamptz not null default now()
);

create table {{schema}}.parked_events (
  id                bigint      generated always as identity primary key,
  subscription      text        not null,
  event_id          uuid        not null,
  event_type        text        not null,
  checkpoint        text        not null,
  -- The handler's error: name, code and message (the message is the integrator's; see README).
  error             jsonb       not null,
  attempts          integer     not null,
  parked_at         timestamptz not null default now(),
  status            text        not null default 'parked'
                                check (status in ('parked', 'retried', 'skipped')),
  resolved_at       timestamptz,
  resolved_by       text,
  resolution_reason text,
  unique (subscription, event_id)
);

create index parked_events_open_idx on {{schema}}.parked_events (subscription, id)
  where status = 'parked';

create table {{schema}}.projections (
  name         text        primary key,
  -- The version whose tables the views point at.
  live_version integer     not null,
  updated_at   timestamptz not null default now()
);

grant select, insert, update on {{schema}}.subscriptions to {{app_role}};
grant select, insert, update on {{schema}}.parked_events to {{app_role}};
grant select, insert, update on {{schema}}.projections to {{app_role}};
