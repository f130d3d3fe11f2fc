// Vectors from S3 practice: the "require encryption + TLS" bucket policy of the wire reference
// (c.6), its one-statement variants from the seed scenario, and the AWS S3
// documentation examples (IP range, per-user home prefix, MFA, public read, referer, SSE-KMS
// key, TLS version).
import {
  ACCT,
  ALLOW,
  BUCKET_ARN,
  DENY,
  IMPLICIT,
  KEY_ARN,
  SRC,
  alice,
  allow,
  anonymous,
  bob,
  deny,
  idRef,
  obj,
  policy,
  request,
  resRef,
  root,
  vector,
  type Vector,
} from './helpers.ts';

const SSE = 's3:x-amz-server-side-encryption';
const SSEC = 's3:x-amz-server-side-encryption-customer-algorithm';
const TLS = { 'aws:SecureTransport': 'true' };
const HTTP = { 'aws:SecureTransport': 'false' };

const requireEncryption = policy(
  deny({ Sid: 'DenyUnEncryptedObjectUploads', Principal: '*', Action: 's3:PutObject', Resource: `${BUCKET_ARN}/*`, Condition: { Null: { [SSE]: 'true' } } }),
  deny({ Sid: 'DenyIncorrectEncryptionHeader', Principal: '*', Action: 's3:PutObject', Resource: `${BUCKET_ARN}/*`, Condition: { StringNotEquals: { [SSE]: ['AES256', 'aws:kms'] } } }),
  deny({ Sid: 'DenyInsecureTransport', Principal: '*', Action: 's3:*', Resource: [BUCKET_ARN, `${BUCKET_ARN}/*`], Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
  deny({ Sid: 'DenySSEC', Principal: '*', Action: 's3:PutObject', Resource: `${BUCKET_ARN}/*`, Condition: { Null: { [SSEC]: 'false' } } }),
);
const aliceAll = policy(allow({ Sid: 'AliceAll', Action: 's3:*', Resource: [BUCKET_ARN, `${BUCKET_ARN}/*`] }));
const enc = (identity: boolean) => ({ ...(identity ? { identity: [aliceAll] } : {}), resource: requireEncryption });

const nullOnly = policy(deny({ Sid: 'DenyNoHeader', Principal: '*', Action: 's3:PutObject', Resource: `${BUCKET_ARN}/*`, Condition: { Null: { [SSE]: 'true' } } }));
const notEqualsOnly = policy(
  deny({ Sid: 'DenyWrongHeader', Principal: '*', Action: 's3:PutObject', Resource: `${BUCKET_ARN}/*`, Condition: { StringNotEquals: { [SSE]: ['AES256', 'aws:kms'] } } }),
);

const ipRange = policy(
  deny({ Sid: 'IPAllow', Principal: '*', Action: 's3:*', Resource: [BUCKET_ARN, `${BUCKET_ARN}/*`], Condition: { NotIpAddress: { 'aws:SourceIp': ['192.0.2.0/24', '2001:DB8:1234:5678::/64'] } } }),
);

const home = policy(
  allow({ Sid: 'AllowListingOfUserFolder', Action: 's3:ListBucket', Resource: BUCKET_ARN, Condition: { StringLike: { 's3:prefix': ['home/${aws:username}/*', 'home/${aws:username}'] } } }),
  allow({ Sid: 'AllowAllS3ActionsInUserFolder', Action: 's3:*', Resource: `${BUCKET_ARN}/home/\${aws:username}/*` }),
);

const mfa = policy(
  deny({ Sid: 'RequireMFA', Principal: '*', Action: 's3:*', Resource: `${BUCKET_ARN}/taxdocuments/*`, Condition: { Null: { 'aws:MultiFactorAuthAge': true } } }),
  deny({ Sid: 'RecentMFA', Principal: '*', Action: 's3:*', Resource: `${BUCKET_ARN}/taxdocuments/*`, Condition: { NumericGreaterThan: { 'aws:MultiFactorAuthAge': 3600 } } }),
  allow({ Sid: 'AllowAll', Principal: '*', Action: 's3:GetObject', Resource: `${BUCKET_ARN}/*` }),
);
const mfaIdentity = policy(
  allow({ Sid: 'AllowRead', Action: 's3:GetObject', Resource: '*' }),
  deny({ Sid: 'DenyWithoutMFA', Action: 's3:*', Resource: '*', Condition: { BoolIfExists: { 'aws:MultiFactorAuthPresent': 'false' } } }),
);

const publicRead = policy(allow({ Sid: 'PublicRead', Principal: '*', Action: ['s3:GetObject', 's3:GetObjectVersion'], Resource: `${BUCKET_ARN}/*` }));
const referer = policy(
  allow({ Sid: 'AllowFromSite', Principal: '*', Action: 's3:GetObject', Resource: `${BUCKET_ARN}/*`, Condition: { StringLike: { 'aws:Referer': ['https://www.example.com/*', 'https://example.com/*'] } } }),
);
const kmsKey = policy(
  deny({ Sid: 'RequireKey', Principal: '*', Action: 's3:PutObject', Resource: `${BUCKET_ARN}/*`, Condition: { StringNotEquals: { 's3:x-amz-server-side-encryption-aws-kms-key-id': KEY_ARN } } }),
);
const tlsVersion = policy(
  deny({ Sid: 'EnforceTLSv12orHigher', Principal: { AWS: '*' }, Action: 's3:*', Resource: [BUCKET_ARN, `${BUCKET_ARN}/*`], Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } } }),
);

const put = (keys: Record<string, string>, who = alice) => request(who, 's3:PutObject', obj('report.pdf'), keys);
const get = (key: string, keys: Record<string, string | string[]> = {}, who = alice) => request(who, 's3:GetObject', obj(key), keys);

export const s3Cases: Vector[] = [
  // c.6: the canonical require-encryption + TLS bucket policy
  vector('c.6: PutObject without the SSE header is denied by the Null statement', SRC.wireC6, enc(true), put(TLS), DENY, resRef(0, 'DenyUnEncryptedObjectUploads')),
  vector('c.6: PutObject with AES256 over TLS is allowed by the identity policy', SRC.wireC6, enc(true), put({ [SSE]: 'AES256', ...TLS }), ALLOW, idRef(0, 'AliceAll')),
  vector('c.6: PutObject with aws:kms over TLS is allowed', SRC.wireC6, enc(true), put({ [SSE]: 'aws:kms', ...TLS }), ALLOW, idRef(0, 'AliceAll')),
  vector('c.6: header value compared case-sensitively (aes256 is wrong)', SRC.wireC6, enc(true), put({ [SSE]: 'aes256', ...TLS }), DENY, resRef(1, 'DenyIncorrectEncryptionHeader')),
  vector('c.6: aws:kms:dsse is not in the allowed list', SRC.wireC6, enc(true), put({ [SSE]: 'aws:kms:dsse', ...TLS }), DENY, resRef(1, 'DenyIncorrectEncryptionHeader')),
  vector('c.6: empty SSE header value is present (Null false) but wrong', SRC.wireC6, enc(true), put({ [SSE]: '', ...TLS }), DENY, resRef(1, 'DenyIncorrectEncryptionHeader')),
  vector('c.6: AES256 over plain HTTP is denied by DenyInsecureTransport', SRC.wireC6, enc(true), put({ [SSE]: 'AES256', ...HTTP }), DENY, resRef(2, 'DenyInsecureTransport')),
  vector('c.6: GetObject over plain HTTP is denied', SRC.wireC6, enc(true), get('report.pdf', HTTP), DENY, resRef(2, 'DenyInsecureTransport')),
  vector('c.6: GetObject over TLS needs no SSE header', SRC.wireC6, enc(true), get('report.pdf', TLS), ALLOW, idRef(0, 'AliceAll')),
  vector('c.6: ListBucket on the bucket ARN over HTTP is denied', SRC.wireC6, enc(true), request(alice, 's3:ListBucket', BUCKET_ARN, HTTP), DENY, resRef(2, 'DenyInsecureTransport')),
  vector('c.6: ListBucket over TLS is allowed', SRC.wireC6, enc(true), request(alice, 's3:ListBucket', BUCKET_ARN, TLS), ALLOW, idRef(0, 'AliceAll')),
  vector('c.6: SSE-C upload (customer algorithm header present) is denied by DenySSEC', SRC.wireC6, enc(true), put({ [SSE]: 'AES256', [SSEC]: 'AES256', ...TLS }), DENY, resRef(3, 'DenySSEC')),
  vector('c.6: aws:SecureTransport absent: Bool does not match an absent key', SRC.wireC6, enc(true), put({ [SSE]: 'AES256' }), ALLOW, idRef(0, 'AliceAll')),
  vector('c.6: Bool value compared case-insensitively (TRUE is not false)', SRC.wireC6, enc(true), put({ [SSE]: 'AES256', 'aws:SecureTransport': 'TRUE' }), ALLOW, idRef(0, 'AliceAll')),
  vector('c.6: the Deny statements alone allow nothing', SRC.wireC6, enc(false), put({ [SSE]: 'AES256', ...TLS }), IMPLICIT),
  vector('c.6: the bucket policy denies the root user too', SRC.wireC6, enc(false), put(TLS, root), DENY, resRef(0, 'DenyUnEncryptedObjectUploads')),
  vector('c.6: the root user with AES256 over TLS is allowed (root, nothing denies)', SRC.wireC6, enc(false), put({ [SSE]: 'AES256', ...TLS }, root), ALLOW),
  vector('c.6: anonymous upload with AES256 over TLS: nothing allows', SRC.wireC6, enc(false), put({ [SSE]: 'AES256', ...TLS }, anonymous), IMPLICIT),
  vector('c.6: anonymous upload without header is denied (Principal *)', SRC.wireC6, enc(true), put(TLS, anonymous), DENY, resRef(0, 'DenyUnEncryptedObjectUploads')),
  vector('seed: Null-only policy denies a header-less upload', SRC.wireC6, { identity: [aliceAll], resource: nullOnly }, put({}), DENY, resRef(0, 'DenyNoHeader')),
  vector('seed: Null-only policy lets a wrong header value through', SRC.wireC6, { identity: [aliceAll], resource: nullOnly }, put({ [SSE]: 'rot13' }), ALLOW, idRef(0, 'AliceAll')),
  vector('seed: StringNotEquals alone denies a header-less upload (negated operator, absent key)', SRC.wireC6, { identity: [aliceAll], resource: notEqualsOnly }, put({}), DENY, resRef(0, 'DenyWrongHeader')),
  vector('seed: StringNotEquals alone denies a wrong value', SRC.wireC6, { identity: [aliceAll], resource: notEqualsOnly }, put({ [SSE]: 'rot13' }), DENY, resRef(0, 'DenyWrongHeader')),
  vector('seed: StringNotEquals alone allows AES256', SRC.wireC6, { identity: [aliceAll], resource: notEqualsOnly }, put({ [SSE]: 'AES256' }), ALLOW, idRef(0, 'AliceAll')),

  // S3 documentation: restrict access to an IP range (IPv4 and IPv6)
  vector('IP range: IPv4 inside 192.0.2.0/24 is not denied', SRC.s3Examples, { identity: [aliceAll], resource: ipRange }, get('a', { 'aws:SourceIp': '192.0.2.10' }), ALLOW, idRef(0, 'AliceAll')),
  vector('IP range: IPv4 outside is denied', SRC.s3Examples, { identity: [aliceAll], resource: ipRange }, get('a', { 'aws:SourceIp': '203.0.113.5' }), DENY, resRef(0, 'IPAllow')),
  vector('IP range: IPv6 inside the /64 is not denied', SRC.s3Examples, { identity: [aliceAll], resource: ipRange }, get('a', { 'aws:SourceIp': '2001:db8:1234:5678::99' }), ALLOW, idRef(0, 'AliceAll')),
  vector('IP range: IPv6 outside the /64 is denied', SRC.s3Examples, { identity: [aliceAll], resource: ipRange }, get('a', { 'aws:SourceIp': '2001:db8:1234:5679::1' }), DENY, resRef(0, 'IPAllow')),
  vector('IP range: no aws:SourceIp at all is denied (NotIpAddress on an absent key)', SRC.s3Examples, { identity: [aliceAll], resource: ipRange }, get('a'), DENY, resRef(0, 'IPAllow')),

  // S3 user policy: each user lists and uses only home/<username>/
  vector('home prefix: alice lists home/alice/', SRC.s3UserPolicies, { identity: [home] }, request(alice, 's3:ListBucket', BUCKET_ARN, { 's3:prefix': 'home/alice/' }), ALLOW, idRef(0, 'AllowListingOfUserFolder')),
  vector('home prefix: alice lists home/alice (no slash)', SRC.s3UserPolicies, { identity: [home] }, request(alice, 's3:ListBucket', BUCKET_ARN, { 's3:prefix': 'home/alice' }), ALLOW, idRef(0, 'AllowListingOfUserFolder')),
  vector('home prefix: alice may not list home/bob/', SRC.s3UserPolicies, { identity: [home] }, request(alice, 's3:ListBucket', BUCKET_ARN, { 's3:prefix': 'home/bob/' }), IMPLICIT),
  vector('home prefix: a listing without s3:prefix is not allowed', SRC.s3UserPolicies, { identity: [home] }, request(alice, 's3:ListBucket', BUCKET_ARN), IMPLICIT),
  vector('home prefix: alice reads her own object', SRC.s3UserPolicies, { identity: [home] }, get('home/alice/notes.txt'), ALLOW, idRef(1, 'AllowAllS3ActionsInUserFolder')),
  vector("home prefix: alice cannot read bob's object", SRC.s3UserPolicies, { identity: [home] }, get('home/bob/notes.txt'), IMPLICIT),
  vector('home prefix: the same policy lets bob read his object', SRC.s3UserPolicies, { identity: [home] }, get('home/bob/notes.txt', {}, bob), ALLOW, idRef(1, 'AllowAllS3ActionsInUserFolder')),

  // S3 documentation: MFA
  vector('MFA: no aws:MultiFactorAuthAge (Null true, JSON boolean value) is denied', SRC.s3Examples, { resource: mfa }, get('taxdocuments/2024.pdf'), DENY, resRef(0, 'RequireMFA')),
  vector('MFA: a recent MFA (300 s) reads the tax documents', SRC.s3Examples, { resource: mfa }, get('taxdocuments/2024.pdf', { 'aws:MultiFactorAuthAge': '300' }), ALLOW, resRef(2, 'AllowAll')),
  vector('MFA: an MFA older than 3600 s is denied', SRC.s3Examples, { resource: mfa }, get('taxdocuments/2024.pdf', { 'aws:MultiFactorAuthAge': '4000' }), DENY, resRef(1, 'RecentMFA')),
  vector('MFA: objects outside taxdocuments/ need no MFA', SRC.s3Examples, { resource: mfa }, get('public/a.txt'), ALLOW, resRef(2, 'AllowAll')),
  vector('MFA (identity): BoolIfExists denies when aws:MultiFactorAuthPresent is absent', SRC.operators, { identity: [mfaIdentity] }, get('a'), DENY, idRef(1, 'DenyWithoutMFA')),
  vector('MFA (identity): BoolIfExists denies when MFA is false', SRC.operators, { identity: [mfaIdentity] }, get('a', { 'aws:MultiFactorAuthPresent': 'false' }), DENY, idRef(1, 'DenyWithoutMFA')),
  vector('MFA (identity): MFA true is allowed', SRC.operators, { identity: [mfaIdentity] }, get('a', { 'aws:MultiFactorAuthPresent': 'true' }), ALLOW, idRef(0, 'AllowRead')),

  // S3 documentation: public read, referer, SSE-KMS key, TLS version
  vector('public read: anonymous GetObject is allowed by Principal *', SRC.s3Examples, { resource: publicRead }, get('index.html', {}, anonymous), ALLOW, resRef(0, 'PublicRead')),
  vector('public read: anonymous PutObject is not', SRC.s3Examples, { resource: publicRead }, request(anonymous, 's3:PutObject', obj('x')), IMPLICIT),
  vector('public read: anonymous ListBucket is not', SRC.s3Examples, { resource: publicRead }, request(anonymous, 's3:ListBucket', BUCKET_ARN), IMPLICIT),
  vector('referer: a matching aws:Referer is allowed', SRC.s3Examples, { resource: referer }, get('img.png', { 'aws:Referer': 'https://www.example.com/page' }, anonymous), ALLOW, resRef(0, 'AllowFromSite')),
  vector('referer: another site is not', SRC.s3Examples, { resource: referer }, get('img.png', { 'aws:Referer': 'https://evil.example.net/' }, anonymous), IMPLICIT),
  vector('referer: no referer is not', SRC.s3Examples, { resource: referer }, get('img.png', {}, anonymous), IMPLICIT),
  vector('SSE-KMS key: the required key ARN passes', SRC.s3Kms, { identity: [aliceAll], resource: kmsKey }, put({ [SSE]: 'aws:kms', 's3:x-amz-server-side-encryption-aws-kms-key-id': KEY_ARN }), ALLOW, idRef(0, 'AliceAll')),
  vector('SSE-KMS key: another key is denied', SRC.s3Kms, { identity: [aliceAll], resource: kmsKey }, put({ [SSE]: 'aws:kms', 's3:x-amz-server-side-encryption-aws-kms-key-id': `arn:aws:kms:us-east-1:${ACCT}:key/other` }), DENY, resRef(0, 'RequireKey')),
  vector('SSE-KMS key: no key id (bucket default) is denied', SRC.s3Kms, { identity: [aliceAll], resource: kmsKey }, put({ [SSE]: 'aws:kms' }), DENY, resRef(0, 'RequireKey')),
  vector('TLS version: 1.1 is denied', SRC.s3Examples, { identity: [aliceAll], resource: tlsVersion }, get('a', { 's3:TlsVersion': '1.1' }), DENY, resRef(0, 'EnforceTLSv12orHigher')),
  vector('TLS version: 1.3 is allowed', SRC.s3Examples, { identity: [aliceAll], resource: tlsVersion }, get('a', { 's3:TlsVersion': '1.3' }), ALLOW, idRef(0, 'AliceAll')),
  vector('TLS version: absent (plain HTTP) is not denied by NumericLessThan', SRC.s3Examples, { identity: [aliceAll], resource: tlsVersion }, get('a'), ALLOW, idRef(0, 'AliceAll')),
];
