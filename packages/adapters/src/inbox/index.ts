export {
  type InboxContext,
  type InboxedHandler,
  type InboxHandler,
  type InboxOptions,
  type InboxStore,
  migrateInbox,
  type PruneInboxOptions,
  pruneInbox,
  withInbox,
} from './inbox.js';
