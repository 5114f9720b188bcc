/**
 * Compliance reports are queries over the event log: nothing is kept for them but the events.
 * Each line names who (actor and role), what, where (stream) and when (database time), and no
 * PHI: the log holds ids and codes only.
 */
import type { EventStore, RecordedEvent } from '@evident/eventstore';
import type { DurableMachine } from '@evident/statemachines';
import type { AnyStateMachine } from 'xstate';

/** One event of a claim's journey, as an auditor reads it. */
export interface JourneyLine {
  readonly recordedAt: string;
  readonly stream: string;
  readonly version: number;
  readonly event: string;
  readonly actor: string;
}

/**
 * What an auditor needs of an event: a machine's transition with the event that caused it
 * (from → to), a saga event with its step (and transition, for a compensation) and the error's
 * name or code, never its message.
 */
function describe(event: RecordedEvent): string {
  const data = (event.data ?? {}) as {
    event?: { type: string };
    from?: unknown;
    to?: unknown;
    step?: unknown;
    transition?: unknown;
    error?: { name?: string; code?: string };
  };
  if (event.type === 'StateTransitioned' && data.event) {
    return `${data.event.type}: ${JSON.stringify(data.from)} → ${JSON.stringify(data.to)}`;
  }
  const parts = [event.type];
  if (typeof data.step === 'string') parts.push(data.step);
  if (typeof data.transition === 'string') parts.push(`→ ${data.transition}`);
  if (data.error) parts.push(`(${data.error.code ?? data.error.name})`);
  return parts.join(' ');
}

/**
 * Every event of one workflow across every stream, in the order of the log: the saga's steps, the
 * encounter's charges, the claim's transitions. One indexed query (`readByCorrelation`).
 */
export async function claimJourney(
  store: EventStore,
  correlationId: string,
): Promise<JourneyLine[]> {
  const events = await store.readByCorrelation(correlationId);
  return events.map((event) => ({
    recordedAt: event.recordedAt,
    stream: `${event.stream.type}/${event.stream.id}`,
    version: event.streamVersion,
    event: describe(event),
    actor: `${event.actor.id} (${event.actor.role})`,
  }));
}

/** SOC 2 segregation of duties: who submitted a claim must not be who posted its payment. */
export interface DutiesCheck {
  readonly claim: string;
  readonly submittedBy: string | null;
  readonly postedBy: string | null;
  /** False only when one person did both; a claim not posted yet passes. */
  readonly separated: boolean;
}

/** The check over one claim's stream, from the transitions' actors. */
export async function segregationOfDuties(
  store: EventStore,
  claimId: string,
): Promise<DutiesCheck> {
  const events = await store.readStream({ type: 'claim', id: claimId });
  const by = (cause: string) =>
    events.find(
      (e) =>
        e.type === 'StateTransitioned' &&
        (e.data as { event: { type: string } }).event.type === cause,
    )?.actor.id ?? null;
  const submittedBy = by('SUBMIT');
  const postedBy = by('POST');
  return {
    claim: claimId,
    submittedBy,
    postedBy,
    separated: submittedBy === null || postedBy === null || submittedBy !== postedBy,
  };
}

/** State health departments ask for evidence that required steps preceded treatment. */
export interface ConsentCheck {
  readonly plan: string;
  /** When the consent was recorded, and when treatment started (database time), if they were. */
  readonly consentRecordedAt: string | null;
  readonly treatmentStartedAt: string | null;
  /** False only when treatment started without consent recorded before it. */
  readonly consentFirst: boolean;
}

/** Whether informed consent was recorded before treatment started, from a plan's history. */
export async function consentBeforeTreatment(
  plans: Pick<DurableMachine<AnyStateMachine>, 'history'>,
  planId: string,
): Promise<ConsentCheck> {
  const history = await plans.history(planId);
  const first = (type: string) =>
    history.find((entry) => entry.kind === 'transitioned' && entry.event.type === type);
  const consent = first('RECORD_CONSENT');
  const start = first('START_TREATMENT');
  return {
    plan: planId,
    consentRecordedAt: consent?.recordedAt ?? null,
    treatmentStartedAt: start?.recordedAt ?? null,
    consentFirst: start === undefined || (consent !== undefined && consent.version < start.version),
  };
}
