// --trust-proxy-tls: X-Forwarded-Proto is believed only from the listed proxy addresses.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { viaTrustedTlsProxy } from '../../src/s3api/app.ts';
import { loadConfig, ConfigError } from '../../src/config/config.ts';

const req = (remoteAddress: string, proto?: string) =>
  ({ socket: { remoteAddress }, headers: proto === undefined ? {} : { 'x-forwarded-proto': proto } }) as unknown as IncomingMessage;

test('only a listed proxy saying https makes a request count as TLS', () => {
  const trusted = ['10.0.0.5', '::1'];
  assert.equal(viaTrustedTlsProxy(req('10.0.0.5', 'https'), trusted), true);
  assert.equal(viaTrustedTlsProxy(req('::ffff:10.0.0.5', 'HTTPS'), trusted), true);
  // A client's value that the proxy appended to, or two header lines: not believed.
  assert.equal(viaTrustedTlsProxy(req('::1', 'https, http'), trusted), false);
  assert.equal(viaTrustedTlsProxy(req('::1', 'http, https'), trusted), false);
  const two = { socket: { remoteAddress: '::1' }, headers: { 'x-forwarded-proto': 'https, https' }, headersDistinct: { 'x-forwarded-proto': ['https', 'https'] } } as unknown as IncomingMessage;
  assert.equal(viaTrustedTlsProxy(two, trusted), false);
  const one = { socket: { remoteAddress: '::1' }, headers: { 'x-forwarded-proto': 'https' }, headersDistinct: { 'x-forwarded-proto': ['https'] } } as unknown as IncomingMessage;
  assert.equal(viaTrustedTlsProxy(one, trusted), true);
  assert.equal(viaTrustedTlsProxy(req('10.0.0.6', 'https'), trusted), false, 'an untrusted address');
  assert.equal(viaTrustedTlsProxy(req('10.0.0.5', 'http'), trusted), false);
  assert.equal(viaTrustedTlsProxy(req('10.0.0.5'), trusted), false);
  assert.equal(viaTrustedTlsProxy(req('10.0.0.5', 'https'), []), false, 'no proxies configured');
  assert.equal(viaTrustedTlsProxy(req('10.0.0.5', 'https'), undefined), false);
});

test('--trust-proxy-tls takes IP addresses (flag list or comma-separated environment)', () => {
  assert.deepEqual(loadConfig({ trustProxyTls: '10.0.0.5, ::1' }, {}).trustProxyTls, ['10.0.0.5', '::1']);
  assert.deepEqual(loadConfig({}, { COFFER_TRUST_PROXY_TLS: '192.168.1.1' }).trustProxyTls, ['192.168.1.1']);
  assert.deepEqual(loadConfig({}, {}).trustProxyTls, []);
  assert.throws(() => loadConfig({ trustProxyTls: 'proxy.example' }, {}), ConfigError);
  assert.equal(loadConfig({}, {}).allowSseCInNewBuckets, false);
  assert.equal(loadConfig({ allowSseCInNewBuckets: true }, {}).allowSseCInNewBuckets, true);
  assert.equal(loadConfig({}, { COFFER_ALLOW_SSE_C_IN_NEW_BUCKETS: 'true' }).allowSseCInNewBuckets, true);
});
