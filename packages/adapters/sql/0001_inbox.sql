-- 0001 inbox: what each consumer has processed, so a message delivered again has no second effect.
--
-- withInbox inserts (consumer, event_id) first, in the same transaction as the handler's database
-- effect. The primary key is the lock: a duplicate delivered at the same time waits on the first
-- one's uncommitted row and then sees the conflict; a duplicate delivered later (a redelivery, a
-- republish, days after SQS's 5-minute FIFO window) sees the committed row. Either way it skips.
--
-- {{schema}} and {{app_role}} are replaced by quoted identifiers before this file runs.

create table {{schema}}.inbox (
  -- Who processed the message: the subscription's queue unless withInbox names another.
  consumer      text        not null check (length(consumer) between 1 and 100),
  event_id      uuid        not null,
  event_type    text        not null,
  processed_at  timestamptz not null default now(),
  primary key (consumer, event_id)
);

-- pruneInbox deletes by age.
create index inbox_processed_at_idx on {{schema}}.inbox (processed_at);

-- Services record and check; removing the record of what ran (pruneInbox) is the owner's job,
-- like migrations, so a service cannot make a processed message look new.
grant select, insert on {{schema}}.inbox to {{app_role}};
