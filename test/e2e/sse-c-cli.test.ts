// SSE-C with the AWS CLI v2, unmodified, over HTTPS (--ca-bundle): aws s3 cp with --sse-c
// AES256 --sse-c-key fileb://... (a small file, and a 20 MiB one that goes multipart: several
// UploadParts each repeating the key), downloads with the key, a copy with a key change
// (--sse-c-copy-source / --sse-c-copy-source-key), s3api head-object / get-object with the key,
// a wrong key refused; over plain HTTP the CLI's SSE-C upload is refused and nothing stored.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, PutBucketEncryptionCommand } from '@aws-sdk/client-s3';
import { awsCli } from '../helpers/aws-cli.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/coffer.ts';
import { blobFiles } from '../helpers/raw-s3.ts';

const CLI = '/usr/bin/aws';
if (process.env.CI && !existsSync(CLI)) throw new Error('CI must provide the AWS CLI v2 (/usr/bin/aws)');

const BUCKET = 'ssec-cli';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('aws-cli v2 SSE-C', { skip: existsSync(CLI) ? false : 'no AWS CLI v2 at /usr/bin/aws' }, () => {
  let srv: TestServer;
  let work: string;
  let aws: (...args: string[]) => Promise<string>;
  let awsHttp: (...args: string[]) => Promise<string>;
  const key1 = randomBytes(32);
  const key2 = randomBytes(32);
  const small = randomBytes(5000);
  const big = randomBytes(20 * 1024 * 1024 + 3);
  const f = (name: string) => join(work, name);

  before(async () => {
    srv = await startTestServer();
    work = tempDir('coffer-ssec-cli-');
    aws = awsCli({ cli: CLI, endpoint: srv.httpsUrl, caPath: srv.caPath, home: work });
    awsHttp = awsCli({ cli: CLI, endpoint: srv.httpUrl, home: work });
    await srv.s3s.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await srv.s3s.send(new PutBucketEncryptionCommand({ Bucket: BUCKET, ServerSideEncryptionConfiguration: { Rules: [{ BlockedEncryptionTypes: { EncryptionType: ['NONE'] } }] } }));
    writeFileSync(f('key1.bin'), key1);
    writeFileSync(f('key2.bin'), key2);
    writeFileSync(f('small.bin'), small);
    writeFileSync(f('big.bin'), big);
  });
  after(async () => srv?.stop());

  test('aws s3 cp up and down with --sse-c (small and multipart)', async () => {
    for (const [name, body] of [
      ['small.bin', small],
      ['big.bin', big],
    ] as const) {
      await aws('s3', 'cp', f(name), `s3://${BUCKET}/${name}`, '--sse-c', 'AES256', '--sse-c-key', `fileb://${f('key1.bin')}`);
      await aws('s3', 'cp', `s3://${BUCKET}/${name}`, f(`down-${name}`), '--sse-c', 'AES256', '--sse-c-key', `fileb://${f('key1.bin')}`);
      assert.equal(sha(readFileSync(f(`down-${name}`))), sha(body), name);
    }
    const head = JSON.parse(await aws('s3api', 'head-object', '--bucket', BUCKET, '--key', 'big.bin', '--sse-customer-algorithm', 'AES256', '--sse-customer-key', `fileb://${f('key1.bin')}`)) as {
      SSECustomerAlgorithm?: string;
      SSECustomerKeyMD5?: string;
      ServerSideEncryption?: string;
      ContentLength?: number;
      ETag?: string;
    };
    assert.equal(head.SSECustomerAlgorithm, 'AES256');
    assert.equal(head.SSECustomerKeyMD5, createHash('md5').update(key1).digest('base64'));
    assert.equal(head.ServerSideEncryption, undefined);
    assert.equal(head.ContentLength, big.length);
    assert.match(head.ETag!, /-\d+"$/, 'the 20 MiB upload went multipart');
  });

  test('s3api get-object --range with the key, at a segment boundary and across parts', async () => {
    for (const [from, to] of [
      [65530, 65545],
      [8 * 1024 * 1024 - 3, 8 * 1024 * 1024 + 2],
    ] as const) {
      const out = f(`range-${from}.bin`);
      const r = JSON.parse(
        await aws('s3api', 'get-object', '--bucket', BUCKET, '--key', 'big.bin', '--range', `bytes=${from}-${to}`, '--sse-customer-algorithm', 'AES256', '--sse-customer-key', `fileb://${f('key1.bin')}`, out),
      ) as { ContentRange?: string; SSECustomerKeyMD5?: string };
      assert.equal(r.ContentRange, `bytes ${from}-${to}/${big.length}`);
      assert.equal(r.SSECustomerKeyMD5, createHash('md5').update(key1).digest('base64'));
      assert.ok(readFileSync(out).equals(big.subarray(from, to + 1)));
    }
  });

  test('aws s3 presign cannot sign the SSE-C headers: as on AWS the URL with the key headers is refused (headers not signed), without them the object needs its key (presigned SSE-C GETs: SDK, test/e2e/sse-c.test.ts)', async () => {
    const url = (await aws('s3', 'presign', `s3://${BUCKET}/small.bin`, '--expires-in', '300')).trim();
    const fetchWith = (headers: Record<string, string>) =>
      new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
        const req = httpsRequest(url, { ca: readFileSync(srv.caPath), headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
        });
        req.on('error', reject);
        req.end();
      });
    const unsigned = await fetchWith({
      'x-amz-server-side-encryption-customer-algorithm': 'AES256',
      'x-amz-server-side-encryption-customer-key': key1.toString('base64'),
      'x-amz-server-side-encryption-customer-key-md5': createHash('md5').update(key1).digest('base64'),
    });
    assert.equal(unsigned.status, 403);
    assert.match(unsigned.body.toString(), /<Code>AccessDenied<\/Code><Message>There were headers present in the request which were not signed<\/Message>/);
    assert.equal((await fetchWith({})).status, 400, 'without the key headers: the object needs its key');
  });

  test('a wrong key or none: the CLI reports the refusal, the object is intact', async () => {
    await assert.rejects(aws('s3', 'cp', `s3://${BUCKET}/small.bin`, f('wrong.bin'), '--sse-c', 'AES256', '--sse-c-key', `fileb://${f('key2.bin')}`), /403|Forbidden|AccessDenied/);
    await assert.rejects(aws('s3api', 'get-object', '--bucket', BUCKET, '--key', 'small.bin', f('none.bin')), /InvalidRequest|400|Bad Request/);
    await aws('s3api', 'get-object', '--bucket', BUCKET, '--key', 'small.bin', '--sse-customer-algorithm', 'AES256', '--sse-customer-key', `fileb://${f('key1.bin')}`, f('again.bin'));
    assert.equal(sha(readFileSync(f('again.bin'))), sha(small));
  });

  test('copy with a key change: --sse-c-copy-source-key old, --sse-c-key new (onto itself and to another key)', async () => {
    for (const [from, to] of [
      ['small.bin', 'small.bin'],
      ['big.bin', 'big-copy.bin'],
    ] as const) {
      await aws(
        's3', 'cp', `s3://${BUCKET}/${from}`, `s3://${BUCKET}/${to}`,
        '--sse-c-copy-source', 'AES256', '--sse-c-copy-source-key', `fileb://${f('key1.bin')}`,
        '--sse-c', 'AES256', '--sse-c-key', `fileb://${f('key2.bin')}`,
        ...(from === to ? ['--metadata-directive', 'REPLACE'] : ['--copy-props', 'metadata-directive']),
      );
      await aws('s3', 'cp', `s3://${BUCKET}/${to}`, f(`copied-${to}`), '--sse-c', 'AES256', '--sse-c-key', `fileb://${f('key2.bin')}`);
      assert.equal(sha(readFileSync(f(`copied-${to}`))), sha(from === 'small.bin' ? small : big));
    }
    await assert.rejects(aws('s3', 'cp', `s3://${BUCKET}/small.bin`, f('old.bin'), '--sse-c', 'AES256', '--sse-c-key', `fileb://${f('key1.bin')}`), /403|Forbidden|AccessDenied/);
  });

  test('over plain HTTP the CLI\'s SSE-C upload is refused and nothing is stored', async () => {
    const before = blobFiles(srv.dataDir).length;
    await assert.rejects(awsHttp('s3', 'cp', f('small.bin'), `s3://${BUCKET}/http.bin`, '--sse-c', 'AES256', '--sse-c-key', `fileb://${f('key1.bin')}`), /secure connection|InvalidRequest|400/);
    assert.equal(blobFiles(srv.dataDir).length, before);
  });
});
