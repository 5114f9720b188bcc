import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'memory/index': 'src/memory/index.ts',
    'rabbitmq/index': 'src/rabbitmq/index.ts',
    'sqs/index': 'src/sqs/index.ts',
    'relay/index': 'src/relay/index.ts',
    'inbox/index': 'src/inbox/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  // The clients and the event store are optional peers: never bundled, loaded only by the
  // subpath that needs them.
  external: ['amqplib', '@aws-sdk/client-sqs', '@aws-sdk/client-sns', '@evident/eventstore'],
  // import.meta.url locates the shipped sql/ folder (the inbox's migrations) in the CommonJS build.
  shims: true,
});
