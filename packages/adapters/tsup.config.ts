import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'memory/index': 'src/memory/index.ts',
    'rabbitmq/index': 'src/rabbitmq/index.ts',
    'sqs/index': 'src/sqs/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  // The clients are optional peers: never bundled, loaded only by the subpath that needs them.
  external: ['amqplib', '@aws-sdk/client-sqs', '@aws-sdk/client-sns'],
});
