import { type DecryptCommand, EncryptCommand } from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { kmsKeyProvider } from './kms.js';
import { localKeyProvider } from './phi.js';

/**
 * The KMS provider's own logic, against a stand-in for KMS that behaves like it where it matters
 * (encryption context is bound; a different context does not decrypt). No KMS emulator runs here.
 */
function fakeKms() {
  const inner = localKeyProvider({ key: Buffer.alloc(32, 7) });
  const calls: Array<{ name: string; keyId?: string; context?: Record<string, string> }> = [];
  return {
    calls,
    async send(command: EncryptCommand | DecryptCommand) {
      const input = command.input as {
        KeyId?: string;
        Plaintext?: Uint8Array;
        CiphertextBlob?: Uint8Array;
        EncryptionContext?: Record<string, string>;
      };
      calls.push({
        name: command.constructor.name,
        keyId: input.KeyId,
        context: input.EncryptionContext,
      });
      if (command instanceof EncryptCommand) {
        return {
          CiphertextBlob: await inner.wrap(input.Plaintext!, input.EncryptionContext ?? {}),
        };
      }
      return {
        Plaintext: await inner.unwrap(input.CiphertextBlob!, input.EncryptionContext ?? {}),
      };
    },
  };
}

describe('the AWS KMS key provider', () => {
  it('wraps with Encrypt and unwraps with Decrypt under the key, passing the context', async () => {
    const kms = fakeKms();
    const provider = kmsKeyProvider({ client: kms as never, keyId: 'alias/evident-phi' });
    const dataKey = Buffer.alloc(32, 1);
    const context = { purpose: 'evident-data-key', keyId: 'k-1', schema: 'evident' };
    const wrapped = await provider.wrap(dataKey, context);
    expect(Buffer.from(await provider.unwrap(wrapped, context))).toEqual(dataKey);
    expect(provider.id).toBe('kms:alias/evident-phi');
    expect(kms.calls.map((c) => [c.name, c.keyId, c.context])).toEqual([
      ['EncryptCommand', 'alias/evident-phi', context],
      ['DecryptCommand', 'alias/evident-phi', context],
    ]);
  });

  it('does not unwrap a key under another context', async () => {
    const provider = kmsKeyProvider({ client: fakeKms() as never, keyId: 'k' });
    const wrapped = await provider.wrap(Buffer.alloc(32, 2), { keyId: 'a' });
    await expect(provider.unwrap(wrapped, { keyId: 'b' })).rejects.toThrow();
  });

  it('passes KMS failures on, for the store to fail closed', async () => {
    const provider = kmsKeyProvider({
      client: { send: () => Promise.reject(new Error('AccessDeniedException')) } as never,
      keyId: 'k',
    });
    await expect(provider.wrap(Buffer.alloc(32), {})).rejects.toThrow('AccessDeniedException');
  });

  it('refuses to be created without a client and a key id', () => {
    expect(() => kmsKeyProvider({ client: undefined as never, keyId: 'k' })).toThrow(
      /client, keyId/,
    );
  });
});
