export {
  type CompatibilityChange,
  type CompatibilityChangeKind,
  type CompatibilityReport,
  checkCompatibility,
} from './compatibility.js';
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
  InvalidSchemaError,
  isEvidentError,
  isSchemaIncompatibleError,
  isSchemaValidationError,
  isUpcastError,
  SchemaIncompatibleError,
  type SchemaIssue,
  SchemaValidationError,
  UpcastError,
} from './errors.js';
export type { JsonSchema } from './jsonSchema.js';
export {
  createSchemaRegistry,
  type SchemaCheckResult,
  type SchemaRegistry,
  type SchemaRegistryOptions,
  type SchemaVersion,
  type Upcaster,
} from './schemaRegistry.js';
export {
  assertJson,
  defaultSerializationLimits,
  deserialize,
  PayloadError,
  parseJson,
  type SerializationLimits,
  serialize,
} from './serialization.js';
export {
  type Logger,
  markSpanFailed,
  meterInstruments,
  offSpan,
  silentLogger,
  traceContextOf,
  traceMetadata,
  traceMetadataKeys,
  tracingOff,
} from './telemetry.js';
