// Is the load generator fast enough? Runs the same workloads against the bare Node HTTP server
// (the ceiling) with three clients: the raw client bench/run.ts uses, node's http Agent with the
// same SigV4 signer, and the AWS SDK v3 (S3Client, keep-alive NodeHttpHandler, no flexible
// checksums). Prints throughput and the CPU each client needed.
//   node --import tsx bench/clients.ts
import http from 'node:http';
import { GetObjectCommand, PutObjectCommand, S3Client as SdkClient } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { S3Client } from './lib/client.ts';
import { KiB, MiB, randomPayload } from './lib/payload.ts';
import { ALL_TARGETS } from './lib/targets.ts';
import { BUCKET, measure, type PhaseResult } from './lib/workloads.ts';

const quick = process.env.BENCH_QUICK === '1';
const bare = ALL_TARGETS.find((t) => t.name === 'bare-http')!;
const target = await bare.start();
const rows: { client: string; phases: PhaseResult[] }[] = [];
try {
  const small = randomPayload(MiB);
  const tiny = randomPayload(4 * KiB);
  const plans = [
    { name: 'PUT 1MiB', size: MiB, put: true, concurrency: 8, maxOps: quick ? 100 : 1000, maxMs: 10_000 },
    { name: 'GET 1MiB', size: MiB, put: false, concurrency: 8, maxOps: quick ? 100 : 1000, maxMs: 10_000 },
    { name: 'PUT 4KiB', size: 4 * KiB, put: true, concurrency: 16, maxOps: quick ? 2000 : 40_000, maxMs: 8_000 },
    { name: 'GET 4KiB', size: 4 * KiB, put: false, concurrency: 16, maxOps: quick ? 2000 : 40_000, maxMs: 8_000 },
  ];
  type Ops = { put(key: string, body: Buffer): Promise<void>; get(key: string): Promise<number>; close(): void };
  const ours = (kind: 'raw' | 'node'): Ops => {
    const c = new S3Client(target.endpoint, 64, kind);
    return {
      async put(key, body) {
        const r = await c.put(BUCKET, key, body);
        if (r.status !== 200) throw new Error(`PUT ${r.status}`);
      },
      async get(key) {
        const r = await c.get(BUCKET, key);
        if (r.status !== 200) throw new Error(`GET ${r.status}`);
        return r.bytes;
      },
      close: () => c.close(),
    };
  };
  const sdk = (): Ops => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const c = new SdkClient({
      endpoint: target.endpoint.url,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'BARE', secretAccessKey: 'BARE' },
      requestHandler: new NodeHttpHandler({ httpAgent: agent }),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    return {
      async put(key, body) {
        await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
      },
      async get(key) {
        const r = await c.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
        let n = 0;
        for await (const chunk of r.Body as AsyncIterable<Uint8Array>) n += chunk.length;
        return n;
      },
      close: () => {
        c.destroy();
        agent.destroy();
      },
    };
  };
  for (const [label, make] of [
    ['raw HTTP/1.1 client (bench default)', () => ours('raw')],
    ["node http Agent + tiny SigV4 (BENCH_CLIENT=node)", () => ours('node')],
    ['AWS SDK v3 S3Client (keep-alive, no checksums)', sdk],
  ] as const) {
    const ops = make();
    const phases: PhaseResult[] = [];
    try {
      for (const p of plans) {
        const body = p.size === MiB ? small.data : tiny.data;
        const prefix = `${label.split(' ')[0]}-${p.size}`;
        if (!p.put) {
          // make sure the objects exist on the bare server (it remembers sizes per path)
          for (let i = 0; i < 64; i++) await ops.put(`${prefix}/${i}`, body);
        }
        await measure(target, 'warmup', { concurrency: p.concurrency, maxOps: 64, maxMs: 5_000 }, async (i) => {
          if (p.put) await ops.put(`${prefix}/${i % 64}`, body);
          else await ops.get(`${prefix}/${i % 64}`);
          return p.size;
        });
        const r = await measure(target, p.name, p, async (i) => {
          if (p.put) {
            await ops.put(`${prefix}/${i % 64}`, body);
            return p.size;
          }
          const n = await ops.get(`${prefix}/${i % 64}`);
          if (n !== p.size) throw new Error(`GET returned ${n} bytes`);
          return n;
        });
        phases.push(r);
        process.stderr.write(`${label}: ${p.name} ${r.mbps.toFixed(1)} MB/s ${r.rps.toFixed(0)}/s gen ${r.genCpu.toFixed(2)} srv ${r.serverCpu.toFixed(2)}${r.errors ? ' ERR ' + r.firstError : ''}\n`);
      }
    } finally {
      ops.close();
    }
    rows.push({ client: label, phases });
  }
} finally {
  await target.stop();
}
console.log('\nLoad generators against the bare Node HTTP server (same machine, 2 cores): throughput, and the client\'s CPU in cores');
console.log('client'.padEnd(52) + ['PUT 1MiB MB/s', 'GET 1MiB MB/s', 'PUT 4KiB req/s', 'GET 4KiB req/s'].map((h) => h.padStart(22)).join(''));
for (const r of rows) {
  const cells = r.phases.map((p) => {
    const v = p.name.includes('1MiB') ? p.mbps.toFixed(1) : p.rps.toFixed(0);
    return `${v} (cpu ${p.genCpu.toFixed(2)})${p.errors ? '!' : ''}`.padStart(22);
  });
  console.log(r.client.padEnd(52) + cells.join(''));
}
