// Vectors for the ARN operators (component-wise matching), Null, the ForAnyValue: /
// ForAllValues: set qualifiers on multi-valued keys (including the empty and absent set), and
// KMS key policies: the default "Enable IAM User Permissions" statement delegating to the
// account, the administrator / user split, and KMS condition keys.
import {
  ACCT,
  ALICE_ARN,
  ALLOW,
  DENY,
  IMPLICIT,
  KEY_ARN,
  OTHER_ACCT,
  ROOT_ARN,
  SRC,
  alice,
  allow,
  bob,
  conditionCase as c,
  deny,
  idRef,
  policy,
  request,
  resRef,
  root,
  vector,
  type Obj,
  type Vector,
} from './helpers.ts';

const O = SRC.operators;
const E = SRC.edge;
const M = SRC.multiValued;
const PA = 'aws:PrincipalArn';
const SA = 'aws:SourceArn';
const ECK = 'kms:EncryptionContextKeys';
const S3ARN = 'kms:EncryptionContext:aws:s3:arn';

const enableIam = allow({ Sid: 'Enable IAM User Permissions', Principal: { AWS: ROOT_ARN }, Action: 'kms:*', Resource: '*' });
const admins = allow({
  Sid: 'Allow access for Key Administrators',
  Principal: { AWS: bob.arn },
  Action: ['kms:Create*', 'kms:Describe*', 'kms:Enable*', 'kms:List*', 'kms:Put*', 'kms:Update*', 'kms:Revoke*', 'kms:Disable*', 'kms:Get*', 'kms:Delete*', 'kms:ScheduleKeyDeletion', 'kms:CancelKeyDeletion'],
  Resource: '*',
});
const users = allow({ Sid: 'Allow use of the key', Principal: { AWS: bob.arn }, Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:DescribeKey'], Resource: '*' });
const defaultKey = policy(enableIam);
const splitKey = policy(admins, users);
const aliceDecrypt = policy(allow({ Sid: 'UseKey', Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: KEY_ARN }));
const aliceDenyDecrypt = policy(deny({ Sid: 'NoDecrypt', Action: 'kms:Decrypt', Resource: '*' }));
const s3Context = policy(
  enableIam,
  allow({ Sid: 'AllowS3Bucket', Principal: { AWS: ALICE_ARN }, Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: '*', Condition: { StringLike: { [S3ARN]: 'arn:aws:s3:::amzn-s3-demo-bucket/*' }, StringEquals: { 'kms:ViaService': 's3.us-east-1.amazonaws.com' } } }),
);
const key = (identity: Obj[], resource: Obj) => ({ identity, resource, resourceKind: 'key' as const });
const kms = (who = alice, action = 'kms:Decrypt', keys: Record<string, string | string[]> = {}) => request(who, action, KEY_ARN, keys);
const viaS3 = (arn: string) => ({ [S3ARN]: arn, 'kms:ViaService': 's3.us-east-1.amazonaws.com' });

export const arnSetCases: Vector[] = [
  c('ArnLike: user/* matches a user of the account (aws:PrincipalArn from the principal)', O, { ArnLike: { [PA]: `arn:aws:iam::${ACCT}:user/*` } }, {}, true),
  c('ArnLike: a wildcard account component', O, { ArnLike: { [PA]: 'arn:aws:iam::*:user/alice' } }, {}, true),
  c('ArnLike: wildcards do not cross the colons of the first five components', E('ArnLike'), { ArnLike: { [PA]: 'arn:aws:iam::*' } }, {}, false),
  c('ArnLike: the resource component keeps its own colons', E('ArnLike'), { ArnLike: { [SA]: 'arn:aws:s3:::*' } }, { [SA]: 'arn:aws:s3:::bucket/a:b:c' }, true),
  c('ArnLike: wildcard region matches us-east-1', O, { ArnLike: { [SA]: 'arn:aws:sqs:us-east-*:*:queue1' } }, { [SA]: `arn:aws:sqs:us-east-1:${ACCT}:queue1` }, true),
  c('ArnLike: wildcard region does not match eu-west-1', O, { ArnLike: { [SA]: 'arn:aws:sqs:us-east-*:*:queue1' } }, { [SA]: `arn:aws:sqs:eu-west-1:${ACCT}:queue1` }, false),
  c('ArnLike: a request value that is not an ARN does not match', E('ArnLike'), { ArnLike: { [SA]: 'arn:*:*:*:*:*' } }, { [SA]: 'not-an-arn' }, false),
  c('ArnLike: absent key does not match', O, { ArnLike: { [SA]: 'arn:aws:s3:::*' } }, {}, false),
  c('ArnEquals: accepts wildcards as ArnLike does', O, { ArnEquals: { [PA]: `arn:aws:iam::${ACCT}:user/a*` } }, {}, true),
  c('ArnEquals: case-sensitive (user/Alice is not user/alice)', O, { ArnEquals: { [PA]: `arn:aws:iam::${ACCT}:user/Alice` } }, {}, false),
  c('ArnNotEquals: absent key matches (negated operator)', O, { ArnNotEquals: { [SA]: 'arn:aws:s3:::bucket' } }, {}, true),
  c('ArnNotEquals: equal ARN does not match', O, { ArnNotEquals: { [SA]: 'arn:aws:s3:::bucket' } }, { [SA]: 'arn:aws:s3:::bucket' }, false),
  c('ArnNotLike: a matching ARN does not match', O, { ArnNotLike: { [PA]: 'arn:aws:iam::*:user/*' } }, {}, false),
  c('ArnNotLike: a non-matching ARN matches', O, { ArnNotLike: { [PA]: 'arn:aws:iam::*:role/*' } }, {}, true),
  c('ArnLikeIfExists: absent key matches', O, { ArnLikeIfExists: { [SA]: 'arn:aws:s3:::x' } }, {}, true),

  c('Null true: absent key matches', O, { Null: { 's3:x-amz-server-side-encryption': 'true' } }, {}, true),
  c('Null true: present key does not match', O, { Null: { 's3:x-amz-server-side-encryption': 'true' } }, { 's3:x-amz-server-side-encryption': 'AES256' }, false),
  c('Null false: present key matches', O, { Null: { 's3:x-amz-server-side-encryption': 'false' } }, { 's3:x-amz-server-side-encryption': 'AES256' }, true),
  c('Null false: absent key does not match', O, { Null: { 's3:x-amz-server-side-encryption': 'false' } }, {}, false),
  c('Null true: an empty string is a present value', E('Null'), { Null: { 's3:x-amz-server-side-encryption': 'true' } }, { 's3:x-amz-server-side-encryption': '' }, false),
  c('Null true: an empty multi-valued key counts as absent', E('Null'), { Null: { [ECK]: 'true' } }, { [ECK]: [] }, true),
  c('Null: a JSON boolean value', E('Null'), { Null: { 'aws:MultiFactorAuthAge': false } }, { 'aws:MultiFactorAuthAge': '30' }, true),

  c('ForAnyValue:StringEquals: one request value in the list', M, { 'ForAnyValue:StringEquals': { [ECK]: ['a', 'b'] } }, { [ECK]: ['a', 'x'] }, true),
  c('ForAnyValue:StringEquals: no request value in the list', M, { 'ForAnyValue:StringEquals': { [ECK]: ['a', 'b'] } }, { [ECK]: ['x', 'y'] }, false),
  c('ForAnyValue:StringEquals: absent key does not match', M, { 'ForAnyValue:StringEquals': { [ECK]: ['a', 'b'] } }, {}, false),
  c('ForAnyValue:StringEquals: empty set does not match', M, { 'ForAnyValue:StringEquals': { [ECK]: ['a', 'b'] } }, { [ECK]: [] }, false),
  c('ForAnyValue:StringEquals: a single-valued key is a set of one', M, { 'ForAnyValue:StringEquals': { [ECK]: ['a', 'b'] } }, { [ECK]: 'b' }, true),
  c('ForAnyValue:StringEqualsIfExists: absent key matches', M, { 'ForAnyValue:StringEqualsIfExists': { [ECK]: 'a' } }, {}, true),
  c('ForAllValues:StringEquals: every request value in the list', M, { 'ForAllValues:StringEquals': { [ECK]: ['a', 'b'] } }, { [ECK]: ['a', 'b'] }, true),
  c('ForAllValues:StringEquals: a subset is enough', M, { 'ForAllValues:StringEquals': { [ECK]: ['a', 'b'] } }, { [ECK]: ['a'] }, true),
  c('ForAllValues:StringEquals: one value outside the list fails', M, { 'ForAllValues:StringEquals': { [ECK]: ['a', 'b'] } }, { [ECK]: ['a', 'x'] }, false),
  c('ForAllValues:StringEquals: absent key matches (empty set)', M, { 'ForAllValues:StringEquals': { [ECK]: ['a', 'b'] } }, {}, true),
  c('ForAllValues:StringEquals: empty set matches', M, { 'ForAllValues:StringEquals': { [ECK]: ['a', 'b'] } }, { [ECK]: [] }, true),
  c('ForAllValues:StringLike: every value like aws:s3:*', M, { 'ForAllValues:StringLike': { [ECK]: 'aws:s3:*' } }, { [ECK]: ['aws:s3:arn'] }, true),
  c('ForAllValues:StringEquals (AWS tag example): environment, cost-center allowed', M, { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['environment', 'cost-center'] } }, { 'aws:TagKeys': ['environment'] }, true),
  c('ForAllValues:StringEquals (AWS tag example): a dept tag is not allowed', M, { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['environment', 'cost-center'] } }, { 'aws:TagKeys': ['environment', 'dept'] }, false),
  c('ForAnyValue:StringNotEquals: some value is not "a"', M, { 'ForAnyValue:StringNotEquals': { [ECK]: 'a' } }, { [ECK]: ['a', 'b'] }, true),
  c('ForAnyValue:StringNotEquals: every value is "a"', M, { 'ForAnyValue:StringNotEquals': { [ECK]: 'a' } }, { [ECK]: ['a'] }, false),
  c('ForAllValues:StringNotEquals: no value is "a"', M, { 'ForAllValues:StringNotEquals': { [ECK]: 'a' } }, { [ECK]: ['b', 'c'] }, true),
  c('ForAllValues:StringNotEquals: one value is "a"', M, { 'ForAllValues:StringNotEquals': { [ECK]: 'a' } }, { [ECK]: ['a', 'b'] }, false),
  c('ForAnyValue:IpAddress: one of several addresses inside', E('ForAnyValue:IpAddress'), { 'ForAnyValue:IpAddress': { 'x:addrs': '10.0.0.0/8' } }, { 'x:addrs': ['192.0.2.1', '10.1.2.3'] }, true),
  c('ForAllValues:NumericLessThan: all below', E('ForAllValues:NumericLessThan'), { 'ForAllValues:NumericLessThan': { 'x:sizes': '100' } }, { 'x:sizes': ['1', '99'] }, true),
  c('ForAllValues:NumericLessThan: one not below', E('ForAllValues:NumericLessThan'), { 'ForAllValues:NumericLessThan': { 'x:sizes': '100' } }, { 'x:sizes': ['1', '100'] }, false),

  // KMS key policies ('key-policy' mode)
  vector('KMS default policy: the root user is allowed by Enable IAM User Permissions', SRC.kmsDefault, key([], defaultKey), kms(root), ALLOW, resRef(0, 'Enable IAM User Permissions')),
  vector('KMS default policy: a user allowed by IAM is allowed (delegation to the account)', SRC.kmsDefault, key([aliceDecrypt], defaultKey), kms(alice), ALLOW, idRef(0, 'UseKey')),
  vector('KMS default policy: a user with no IAM policy is not allowed', SRC.kmsDefault, key([], defaultKey), kms(alice), IMPLICIT),
  vector('KMS default policy: IAM allows Decrypt only, so Encrypt is not allowed', SRC.kmsDefault, key([aliceDecrypt], defaultKey), kms(alice, 'kms:Encrypt'), IMPLICIT),
  vector('KMS default policy: an IAM Deny wins over the delegation', SRC.kmsDefault, key([aliceDenyDecrypt], defaultKey), kms(alice), DENY, idRef(0, 'NoDecrypt')),
  vector('KMS: without the account statement, an IAM Allow does not count', SRC.kmsPolicies, key([aliceDecrypt], splitKey), kms(alice), IMPLICIT),
  vector('KMS: a key user named in the key policy needs no IAM policy', SRC.kmsDefault, key([], splitKey), kms(bob, 'kms:GenerateDataKey'), ALLOW, resRef(1, 'Allow use of the key')),
  vector('KMS: ReEncrypt* covers kms:ReEncryptFrom', SRC.kmsDefault, key([], splitKey), kms(bob, 'kms:ReEncryptFrom'), ALLOW, resRef(1, 'Allow use of the key')),
  vector('KMS: the administrator statement allows PutKeyPolicy', SRC.kmsDefault, key([], splitKey), kms(bob, 'kms:PutKeyPolicy'), ALLOW, resRef(0, 'Allow access for Key Administrators')),
  vector('KMS: the administrator statement does not allow ScheduleKeyDeletion to alice', SRC.kmsDefault, key([], splitKey), kms(alice, 'kms:ScheduleKeyDeletion'), IMPLICIT),
  vector('KMS: without the account statement even the root user is not allowed', SRC.kmsPolicies, key([], splitKey), kms(root), IMPLICIT),
  vector('KMS: a bare account id principal delegates like the root ARN', SRC.principal, key([aliceDecrypt], policy(allow({ Sid: 'Acct', Principal: { AWS: ACCT }, Action: 'kms:*', Resource: '*' }))), kms(alice), ALLOW, idRef(0, 'UseKey')),
  vector('KMS: another account in the key policy does not delegate to this one', SRC.principal, key([aliceDecrypt], policy(allow({ Sid: 'Other', Principal: { AWS: `arn:aws:iam::${OTHER_ACCT}:root` }, Action: 'kms:*', Resource: '*' }))), kms(alice), IMPLICIT),
  vector('KMS: kms:EncryptionContext:aws:s3:arn inside the bucket, via S3', SRC.kmsConditions, key([], s3Context), kms(alice, 'kms:Decrypt', viaS3('arn:aws:s3:::amzn-s3-demo-bucket/photos/cat.jpg')), ALLOW, resRef(1, 'AllowS3Bucket')),
  vector('KMS: encryption context of another bucket is not allowed', SRC.kmsConditions, key([], s3Context), kms(alice, 'kms:Decrypt', viaS3('arn:aws:s3:::other-bucket/cat.jpg')), IMPLICIT),
  vector('KMS: the right context but not via S3 is not allowed', SRC.kmsConditions, key([], s3Context), kms(alice, 'kms:Decrypt', { [S3ARN]: 'arn:aws:s3:::amzn-s3-demo-bucket/a' }), IMPLICIT),
  vector('KMS: no encryption context is not allowed', SRC.kmsConditions, key([], s3Context), kms(alice, 'kms:GenerateDataKey', { 'kms:ViaService': 's3.us-east-1.amazonaws.com' }), IMPLICIT),
  vector('KMS: the encryption context key name is case-insensitive in the policy', SRC.kmsConditions, key([], policy(allow({ Sid: 'Ctx', Principal: { AWS: ALICE_ARN }, Action: 'kms:Decrypt', Resource: '*', Condition: { StringEquals: { 'kms:encryptioncontext:AWS:S3:ARN': 'arn:aws:s3:::b/k' } } }))), kms(alice, 'kms:Decrypt', { [S3ARN]: 'arn:aws:s3:::b/k' }), ALLOW, resRef(0, 'Ctx')),
  vector('KMS: ForAllValues on kms:EncryptionContextKeys is true without any context (AWS warns)', SRC.kmsConditions, key([], policy(allow({ Sid: 'OnlyS3Ctx', Principal: { AWS: ALICE_ARN }, Action: 'kms:Encrypt', Resource: '*', Condition: { 'ForAllValues:StringEquals': { [ECK]: 'aws:s3:arn' } } }))), kms(alice, 'kms:Encrypt'), ALLOW, resRef(0, 'OnlyS3Ctx')),
  vector('KMS: kms:CallerAccount StringEquals the account', SRC.kmsConditions, key([], policy(allow({ Sid: 'Caller', Principal: { AWS: '*' }, Action: 'kms:Decrypt', Resource: '*', Condition: { StringEquals: { 'kms:CallerAccount': ACCT } } }))), kms(alice, 'kms:Decrypt', { 'kms:CallerAccount': ACCT }), ALLOW, resRef(0, 'Caller')),
];
