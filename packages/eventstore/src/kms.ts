import { DecryptCommand, EncryptCommand, type KMSClient } from '@aws-sdk/client-kms';
import { InvalidArgumentError } from '@evident/envelope';
import type { KeyProvider } from './phi.js';

/**
 * A key provider backed by AWS KMS: data keys are wrapped with `Encrypt` and unwrapped with
 * `Decrypt` under a KMS key, with the store's context as the KMS encryption context (so a wrapped
 * key copied elsewhere does not decrypt, and CloudTrail shows which key was used for what).
 *
 * @example
 * ```ts
 * import { KMSClient } from '@aws-sdk/client-kms';
 * import { kmsKeyProvider } from '@evident/eventstore/kms';
 *
 * const keys = kmsKeyProvider({ client: new KMSClient({}), keyId: 'alias/evident-phi' });
 * const store = createEventStore({ connectionString, phi: { registry, keys, subject } });
 * ```
 */
export function kmsKeyProvider(options: {
  readonly client: Pick<KMSClient, 'send'>;
  /** Key id, ARN or alias of the KMS key that wraps data keys. */
  readonly keyId: string;
}): KeyProvider {
  const { client, keyId } = options ?? ({} as never);
  if (typeof client?.send !== 'function' || typeof keyId !== 'string' || keyId.length === 0) {
    throw new InvalidArgumentError('kmsKeyProvider needs { client, keyId }');
  }
  return {
    id: `kms:${keyId}`,
    async wrap(dataKey, context) {
      const result = await client.send(
        new EncryptCommand({ KeyId: keyId, Plaintext: dataKey, EncryptionContext: { ...context } }),
      );
      if (!result.CiphertextBlob) throw new Error('KMS returned no ciphertext');
      return result.CiphertextBlob;
    },
    async unwrap(wrapped, context) {
      const result = await client.send(
        new DecryptCommand({
          KeyId: keyId,
          CiphertextBlob: wrapped,
          EncryptionContext: { ...context },
        }),
      );
      if (!result.Plaintext) throw new Error('KMS returned no plaintext');
      return result.Plaintext;
    },
  };
}
