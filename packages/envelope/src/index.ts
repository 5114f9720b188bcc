export {
  type Actor,
  assertEnvelope,
  type ChildEnvelopeInput,
  causedBy,
  createEnvelope,
  type Envelope,
  type EnvelopeInput,
  envelopeFieldLimits,
  envelopePatterns,
  newEventId,
} from './envelope.js';
export {
  type EnvelopeErrorCode,
  EvidentError,
  type EvidentErrorOptions,
  InvalidArgumentError,
  isEvidentError,
  isSchemaValidationError,
  type SchemaIssue,
  SchemaValidationError,
} from './errors.js';
export {
  assertJson,
  defaultSerializationLimits,
  deserialize,
  PayloadError,
  parseJson,
  type SerializationLimits,
  serialize,
} from './serialization.js';
