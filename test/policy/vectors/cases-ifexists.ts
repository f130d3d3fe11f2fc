// Vectors for the ...IfExists form of every operator not already covered elsewhere: an
// absent key makes the clause true, a present key is judged as by the plain operator. The
// expected outcome for the present key is written in each row.
import { SRC, conditionCase, type Vector } from './helpers.ts';

type Row = [operator: string, key: string, policyValue: string, requestValue: string, matchesWhenPresent: boolean];

const rows: Row[] = [
  ['StringNotEqualsIgnoreCase', 's3:prefix', 'Photos/', 'photos/', false],
  ['StringNotLike', 's3:prefix', 'tmp/*', 'photos/a', true],
  ['NumericEquals', 's3:max-keys', '100', '100', true],
  ['NumericNotEquals', 's3:max-keys', '100', '100', false],
  ['NumericLessThanEquals', 's3:max-keys', '100', '101', false],
  ['NumericGreaterThan', 's3:max-keys', '100', '101', true],
  ['NumericGreaterThanEquals', 's3:max-keys', '100', '99', false],
  ['DateEquals', 'aws:CurrentTime', '2024-03-01T00:00:00Z', '2024-03-01T00:00:00Z', true],
  ['DateNotEquals', 'aws:CurrentTime', '2024-03-01T00:00:00Z', '2024-03-02T00:00:00Z', true],
  ['DateLessThanEquals', 'aws:CurrentTime', '2024-03-01T00:00:00Z', '2024-03-01T00:00:01Z', false],
  ['DateGreaterThan', 'aws:EpochTime', '1700000000', '1700000001', true],
  ['DateGreaterThanEquals', 'aws:EpochTime', '1700000000', '1699999999', false],
  ['NotIpAddress', 'aws:SourceIp', '10.0.0.0/8', '10.9.9.9', false],
  ['ArnEquals', 'aws:SourceArn', 'arn:aws:s3:::logs', 'arn:aws:s3:::logs', true],
  ['ArnNotEquals', 'aws:SourceArn', 'arn:aws:s3:::logs', 'arn:aws:s3:::other', true],
  ['ArnNotLike', 'aws:SourceArn', 'arn:aws:s3:::log*', 'arn:aws:s3:::logs', false],
];

export const ifExistsCases: Vector[] = rows.flatMap(([op, key, pol, req, present]) => [
  conditionCase(`${op}IfExists: absent key matches`, SRC.operators, { [`${op}IfExists`]: { [key]: pol } }, {}, true),
  conditionCase(`${op}IfExists: present key judged as ${op}`, SRC.operators, { [`${op}IfExists`]: { [key]: pol } }, { [key]: req }, present),
]);
