// The one error the policy module throws: a policy document that is not valid. It is an
// S3Error with code MalformedPolicy (400), so the S3 adapter renders it as is; the KMS API maps
// the same error to MalformedPolicyDocumentException. The message says what is wrong and
// where; the location is also given as fields for callers that want it structured.
import { S3Error } from '../shared/errors.ts';

export interface PolicyErrorLocation {
  /** Offset in the document text (JSON syntax errors). */
  readonly position?: number;
  /** 0-based index of the statement, as in Decision.decidingStatement.index. */
  readonly statementIndex?: number;
  readonly sid?: string;
  /** The policy element at fault: 'Action', 'Condition', 'Principal', ... */
  readonly field?: string;
}

export class PolicyError extends S3Error {
  readonly location: PolicyErrorLocation;

  constructor(message: string, location: PolicyErrorLocation = {}) {
    super('MalformedPolicy', message);
    this.name = 'PolicyError';
    this.location = location;
  }
}

export function isPolicyError(e: unknown): e is PolicyError {
  return e instanceof PolicyError;
}
