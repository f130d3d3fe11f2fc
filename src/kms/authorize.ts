// Authorization of KMS calls: the key policy is the gate ('key-policy' evaluation mode); a
// statement naming the account delegates to the caller's identity policies. Calls on no key
// (CreateKey, ListKeys, ListAliases, GenerateRandom) are judged by identity policies alone, the
// account root user being allowed whatever no policy denies. AccessDeniedException messages are
// AWS's.
import { evaluate, type ContextValue, type Decision, type Policy, type RequestPrincipal } from '../policy/index.ts';
import type { Principal } from '../service/identities.ts';

export interface KmsDecisionInput {
  principal: Principal;
  /** e.g. 'kms:Decrypt' */
  action: string;
  /** The key ARN, or '*' for calls on no key. */
  resource: string;
  identityPolicies: readonly Policy[];
  /** Absent for calls on no key. */
  keyPolicy?: Policy;
  conditionKeys: Record<string, ContextValue>;
}

function requestPrincipal(p: Principal): RequestPrincipal {
  return {
    type: p.type,
    arn: p.arn,
    account: p.account,
    ...(p.type === 'Root' ? { isRoot: true } : {}),
    ...(p.userName !== undefined ? { userName: p.userName } : {}),
    ...(p.type !== 'Anonymous' ? { userId: p.userId } : {}),
  };
}

export function authorizeKms(input: KmsDecisionInput): Decision {
  return evaluate(
    {
      identityPolicies: input.identityPolicies,
      ...(input.keyPolicy ? { resourcePolicy: input.keyPolicy, mode: 'key-policy' as const } : { mode: 'union' as const }),
    },
    { principal: requestPrincipal(input.principal), action: input.action, resource: input.resource, conditionKeys: input.conditionKeys },
  );
}

/**
 * AWS's words: "User: <arn> is not authorized to perform: kms:Decrypt on resource: <key arn>
 * because no identity-based policy allows the kms:Decrypt action" (or "... no resource-based
 * policy allows ...", "... with an explicit deny in a resource-based policy").
 */
export function accessDeniedMessage(input: KmsDecisionInput, d: Decision): string {
  const head = `User: ${input.principal.arn} is not authorized to perform: ${input.action} on resource: ${input.resource}`;
  if (d.effect === 'Deny') {
    const where = d.decidingStatement?.source === 'resource' ? 'a resource-based policy' : 'an identity-based policy';
    return `${head} with an explicit deny in ${where}`;
  }
  // The key policy delegated to IAM (or there is no key policy) and no identity policy allowed;
  // otherwise the key policy itself did not allow.
  const delegated = !input.keyPolicy || /delegates to identity policies/.test(d.reason);
  return `${head} because no ${delegated ? 'identity' : 'resource'}-based policy allows the ${input.action} action`;
}
