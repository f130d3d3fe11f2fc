// How fast this machine's cores are right now, for reading a run's absolute figures: the VM's
// speed moves by tens of percent within an hour (docs/performance.md, "Goals"), and the
// server's two heaviest costs per byte are AES-GCM and MD5. Each is measured on one core by
// `openssl speed` (16 KiB blocks, one second each): OpenSSL's own rate, without node's cipher
// API around it (which costs about as much again: docs/performance.md, "Session 12").
import { execFileSync } from 'node:child_process';

export interface HostSpeed {
  /** AES-128-GCM: bytes/s of one core. */
  aesGcm: number;
  /** MD5: bytes/s of one core. */
  md5: number;
}

function opensslRate(alg: string): number {
  const out = execFileSync('openssl', ['speed', '-elapsed', '-seconds', '1', '-bytes', '16384', '-evp', alg], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  // The last line: "<name> <rate>k", in thousands of bytes per second.
  const m = /([\d.]+)k\s*$/.exec(out.trim());
  if (!m) throw new Error(`openssl speed ${alg}: unexpected output`);
  return Number(m[1]) * 1000;
}

/** undefined when `openssl` is missing (the figures are information, not part of any check). */
export function hostSpeed(): HostSpeed | undefined {
  try {
    return { aesGcm: opensslRate('aes-128-gcm'), md5: opensslRate('md5') };
  } catch {
    return undefined;
  }
}

export function formatHostSpeed(s: HostSpeed): string {
  return `AES-128-GCM ${(s.aesGcm / 1e9).toFixed(2)} GB/s, MD5 ${(s.md5 / 1e6).toFixed(0)} MB/s`;
}
