// TLS material: the operator's certificate and key, or a local CA and a server certificate
// generated on first start into <dataDir>/tls and reused afterwards. The server certificate
// is re-issued (by the same CA) when the configured names change or it nears expiry.
import { webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

/**
 * @peculiar/x509 (with reflect-metadata) only to issue certificates: first start, new names,
 * renewal. A server that finds valid material (checked with node:crypto) never loads it,
 * which saves ~19 MiB of memory.
 */
let x509Lib: Promise<typeof import('@peculiar/x509')> | undefined;
function certificateLibrary(): Promise<typeof import('@peculiar/x509')> {
  x509Lib ??= (async () => {
    await import('reflect-metadata');
    const lib = await import('@peculiar/x509');
    lib.cryptoProvider.set(webcrypto as unknown as Crypto);
    return lib;
  })();
  return x509Lib;
}

export interface TlsMaterial {
  cert: string;
  key: string;
  /** Path of the CA certificate clients should trust (generated CA, or undefined for operator certs). */
  caPath?: string;
  certPath: string;
  generated: boolean;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64.trimEnd()}\n-----END ${label}-----\n`;
}

async function exportKey(key: CryptoKey): Promise<string> {
  return pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey));
}

async function importKey(pemText: string): Promise<CryptoKey> {
  const der = Buffer.from(pemText.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  return (await webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign'])) as unknown as CryptoKey;
}

function serial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = b[0]! & 0x7f; // positive
  return Buffer.from(b).toString('hex');
}

export async function loadOrCreateTls(dataDir: string, names: readonly string[], certPath?: string, keyPath?: string): Promise<TlsMaterial> {
  if (certPath && keyPath) {
    return { cert: await fsp.readFile(certPath, 'utf8'), key: await fsp.readFile(keyPath, 'utf8'), certPath, generated: false };
  }
  const dir = join(dataDir, 'tls');
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const caCertPath = join(dir, 'ca.crt');
  const caKeyPath = join(dir, 'ca.key');
  const srvCertPath = join(dir, 'server.crt');
  const srvKeyPath = join(dir, 'server.key');

  let caCertPem: string;
  let caKey: CryptoKey;
  if (existsSync(caCertPath) && existsSync(caKeyPath)) {
    caCertPem = await fsp.readFile(caCertPath, 'utf8');
    caKey = await importKey(await fsp.readFile(caKeyPath, 'utf8'));
  } else {
    const x509 = await certificateLibrary();
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
    const ca = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: 'CN=Coffer Local CA, O=Coffer',
      notBefore: new Date(Date.now() - DAY_MS),
      notAfter: new Date(Date.now() + 3650 * DAY_MS),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    caCertPem = ca.toString('pem') + '\n';
    caKey = keys.privateKey;
    await fsp.writeFile(caKeyPath, await exportKey(keys.privateKey), { mode: 0o600 });
    await fsp.writeFile(caCertPath, caCertPem, { mode: 0o644 });
  }

  const wanted = ['localhost', '127.0.0.1', '::1', ...names];
  if (existsSync(srvCertPath) && existsSync(srvKeyPath)) {
    const cert = await fsp.readFile(srvCertPath, 'utf8');
    if (certCovers(cert, wanted)) {
      return { cert, key: await fsp.readFile(srvKeyPath, 'utf8'), caPath: caCertPath, certPath: srvCertPath, generated: false };
    }
  }
  const x509 = await certificateLibrary();
  const caCert = new x509.X509Certificate(caCertPem);
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const srv = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: 'CN=localhost, O=Coffer',
    issuer: caCert.subject,
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + 397 * DAY_MS),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        [...new Set(wanted)].map((n) => (isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n })),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  const cert = srv.toString('pem') + '\n';
  const key = await exportKey(keys.privateKey);
  await fsp.writeFile(srvKeyPath, key, { mode: 0o600 });
  await fsp.writeFile(srvCertPath, cert, { mode: 0o644 });
  return { cert, key, caPath: caCertPath, certPath: srvCertPath, generated: true };
}

/** True if the certificate is valid for 30 more days and names every wanted host. */
function certCovers(pemText: string, wanted: string[]): boolean {
  try {
    const c = new NodeX509(pemText);
    if (Date.parse(c.validTo) - Date.now() < 30 * DAY_MS) return false;
    const san = c.subjectAltName ?? '';
    return wanted.every((n) => (isIP(n) ? c.checkIP(n) !== undefined : san.includes(`DNS:${n}`)));
  } catch {
    return false;
  }
}
