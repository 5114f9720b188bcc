-- 0005 PHI protection: one data key per subject (patient), wrapped by a key-encryption key that
-- never enters the database. Events carry only ciphertext and the data key's id.

create table {{schema}}.data_keys (
  key_id        uuid        primary key,
  -- sha256 of the subject (a patient id): the table does not list patients.
  subject_hash  bytea       not null,
  tenant_id     text        default {{schema}}.current_tenant(),
  -- Which key-encryption key wrapped it (the provider's id).
  kek_id        text        not null,
  -- Null once shredded: the ciphertext it protected can never be read again.
  wrapped_key   bytea,
  created_at    timestamptz not null default now(),
  -- Last time an event was encrypted with it (kept to the hour), for the retention rule.
  last_used_at  timestamptz not null default now(),
  shredded_at   timestamptz
);
create unique index data_keys_subject_idx on {{schema}}.data_keys (coalesce(tenant_id, ''), subject_hash);

alter table {{schema}}.data_keys enable row level security;
alter table {{schema}}.data_keys force row level security;
create policy tenant_isolation on {{schema}}.data_keys
  using (tenant_id is not distinct from {{schema}}.current_tenant())
  with check (tenant_id is not distinct from {{schema}}.current_tenant());

grant select, insert on {{schema}}.data_keys to {{app_role}};
grant update (last_used_at) on {{schema}}.data_keys to {{app_role}};
