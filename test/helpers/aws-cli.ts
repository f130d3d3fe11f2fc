// Runs the AWS CLI, unmodified, against a test server: isolated from any user configuration,
// with the given credentials, over HTTP or HTTPS (trusting the server's CA with --ca-bundle).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ACCESS_KEY, SECRET_KEY } from './coffer.ts';

const run = promisify(execFile);

export interface AwsCliOptions {
  /** Path of the aws executable. */
  cli: string;
  endpoint: string;
  /** CA bundle for HTTPS endpoints. */
  caPath?: string;
  /** A scratch directory used as HOME. */
  home: string;
  accessKeyId?: string;
  secretAccessKey?: string;
}

/** `aws(...args)` resolves with stdout, or rejects with the CLI's stderr in the message. */
export function awsCli(o: AwsCliOptions): (...args: string[]) => Promise<string> {
  return async (...args: string[]) => {
    try {
      const r = await run(o.cli, [...args, '--endpoint-url', o.endpoint, ...(o.caPath ? ['--ca-bundle', o.caPath] : [])], {
        env: {
          PATH: process.env.PATH,
          HOME: o.home,
          AWS_ACCESS_KEY_ID: o.accessKeyId ?? ACCESS_KEY,
          AWS_SECRET_ACCESS_KEY: o.secretAccessKey ?? SECRET_KEY,
          AWS_DEFAULT_REGION: 'us-east-1',
          AWS_CONFIG_FILE: join(o.home, 'none'),
          AWS_SHARED_CREDENTIALS_FILE: join(o.home, 'none'),
          AWS_PAGER: '',
        },
        maxBuffer: 64 * 1024 * 1024,
      });
      return r.stdout;
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`aws ${args.join(' ')} failed: ${err.stderr ?? err.message}`);
    }
  };
}

/**
 * `aws(...args)` against a test server over `transport` (HTTPS trusts the server's CA). The
 * server is read when called, so it may be started after this is made (in a `before`).
 */
export function awsCliOver(
  server: () => { httpUrl: string; httpsUrl: string; caPath: string },
  transport: 'http' | 'https',
  opts: { cli: string; home: () => string },
): (...args: string[]) => Promise<string> {
  return (...args: string[]) => {
    const srv = server();
    return awsCli({
      cli: opts.cli,
      endpoint: transport === 'http' ? srv.httpUrl : srv.httpsUrl,
      ...(transport === 'https' ? { caPath: srv.caPath } : {}),
      home: opts.home(),
    })(...args);
  };
}
