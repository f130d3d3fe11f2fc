// Vectors for the string operators (Equals, NotEquals, IgnoreCase, Like, NotLike), their
// ...IfExists forms, absent keys, negation, multiple values (OR), multiple keys and
// operators (AND), and case-insensitive condition key names. Each case is alice's
// identity policy allowing s3:GetObject under one condition (see conditionCase).
import { SRC, conditionCase as c, type Vector } from './helpers.ts';

const O = SRC.operators;
const E = SRC.edge;
const P = 's3:prefix';

export const stringCases: Vector[] = [
  c('StringEquals: exact match', O, { StringEquals: { [P]: 'photos/' } }, { [P]: 'photos/' }, true),
  c('StringEquals: different case does not match', O, { StringEquals: { [P]: 'photos/' } }, { [P]: 'Photos/' }, false),
  c('StringEquals: absent key does not match', O, { StringEquals: { [P]: 'photos/' } }, {}, false),
  c('StringEquals: values are OR\'ed (second matches)', SRC.condition, { StringEquals: { [P]: ['docs/', 'photos/'] } }, { [P]: 'photos/' }, true),
  c('StringEquals: a JSON number value compares as its text', E('StringEquals'), { StringEquals: { 's3:max-keys': 10 } }, { 's3:max-keys': '10' }, true),
  c('StringEquals: * is literal, not a wildcard', E('StringEquals'), { StringEquals: { [P]: 'photos/*' } }, { [P]: 'photos/a' }, false),
  c('StringEquals: empty string equals empty string', E('StringEquals'), { StringEquals: { [P]: '' } }, { [P]: '' }, true),
  c('StringEquals: multi-valued key without qualifier matches if any value matches', E('StringEquals'), { StringEquals: { 'aws:TagKeys': 'env' } }, { 'aws:TagKeys': ['owner', 'env'] }, true),
  c('StringEquals: condition key names are case-insensitive', SRC.condition, { StringEquals: { 'S3:PREFIX': 'photos/' } }, { 's3:prefix': 'photos/' }, true),
  c('StringEquals: request key name case does not matter either', SRC.condition, { StringEquals: { 's3:prefix': 'photos/' } }, { 'S3:Prefix': 'photos/' }, true),
  c('StringNotEquals: a different value matches', O, { StringNotEquals: { [P]: 'photos/' } }, { [P]: 'docs/' }, true),
  c('StringNotEquals: the same value does not match', O, { StringNotEquals: { [P]: 'photos/' } }, { [P]: 'photos/' }, false),
  c('StringNotEquals: absent key matches (negated operator)', O, { StringNotEquals: { [P]: 'photos/' } }, {}, true),
  c('StringNotEquals: a value in the list does not match (NOR of the values)', O, { StringNotEquals: { [P]: ['docs/', 'photos/'] } }, { [P]: 'docs/' }, false),
  c('StringNotEquals: a value in none of the list matches', O, { StringNotEquals: { [P]: ['docs/', 'photos/'] } }, { [P]: 'music/' }, true),
  c('StringNotEquals: case differs, so not equal', O, { StringNotEquals: { [P]: 'photos/' } }, { [P]: 'PHOTOS/' }, true),
  c('StringNotEquals: multi-valued key with one listed value does not match', E('StringNotEquals'), { StringNotEquals: { 'aws:TagKeys': 'env' } }, { 'aws:TagKeys': ['owner', 'env'] }, false),
  c('StringEqualsIgnoreCase: case-insensitive match', O, { StringEqualsIgnoreCase: { 'aws:username': 'ALICE' } }, {}, true),
  c('StringEqualsIgnoreCase: different value does not match', O, { StringEqualsIgnoreCase: { 'aws:username': 'bob' } }, {}, false),
  c('StringEqualsIgnoreCase: absent key does not match', O, { StringEqualsIgnoreCase: { [P]: 'x' } }, {}, false),
  c('StringNotEqualsIgnoreCase: same value in other case does not match', O, { StringNotEqualsIgnoreCase: { [P]: 'PHOTOS/' } }, { [P]: 'photos/' }, false),
  c('StringNotEqualsIgnoreCase: different value matches', O, { StringNotEqualsIgnoreCase: { [P]: 'photos/' } }, { [P]: 'docs/' }, true),
  c('StringNotEqualsIgnoreCase: absent key matches', O, { StringNotEqualsIgnoreCase: { [P]: 'photos/' } }, {}, true),
  c('StringLike: * matches any sequence, across slashes', O, { StringLike: { [P]: 'home/*' } }, { [P]: 'home/a/b/c' }, true),
  c('StringLike: * matches the empty sequence', O, { StringLike: { [P]: 'home/*' } }, { [P]: 'home/' }, true),
  c('StringLike: ? matches exactly one character', O, { StringLike: { [P]: 'log-?.txt' } }, { [P]: 'log-1.txt' }, true),
  c('StringLike: ? does not match two characters', O, { StringLike: { [P]: 'log-?.txt' } }, { [P]: 'log-10.txt' }, false),
  c('StringLike: ? does not match zero characters', O, { StringLike: { [P]: 'log-?.txt' } }, { [P]: 'log-.txt' }, false),
  c('StringLike: case-sensitive', O, { StringLike: { [P]: 'home/*' } }, { [P]: 'HOME/a' }, false),
  c('StringLike: the whole value must match', O, { StringLike: { [P]: 'home' } }, { [P]: 'home/a' }, false),
  c('StringLike: absent key does not match', O, { StringLike: { [P]: '*' } }, {}, false),
  c('StringLike: regex characters are literal', E('StringLike'), { StringLike: { [P]: 'a.c(1)+*' } }, { [P]: 'abc(1)+x' }, false),
  c('StringLike: regex characters match themselves', E('StringLike'), { StringLike: { [P]: 'a.c(1)+*' } }, { [P]: 'a.c(1)+x' }, true),
  c('StringNotLike: a matching value does not match', O, { StringNotLike: { [P]: 'home/*' } }, { [P]: 'home/a' }, false),
  c('StringNotLike: a non-matching value matches', O, { StringNotLike: { [P]: 'home/*' } }, { [P]: 'tmp/a' }, true),
  c('StringNotLike: absent key matches', O, { StringNotLike: { [P]: 'home/*' } }, {}, true),
  c('StringEqualsIfExists: absent key matches', O, { StringEqualsIfExists: { [P]: 'photos/' } }, {}, true),
  c('StringEqualsIfExists: present and different does not match', O, { StringEqualsIfExists: { [P]: 'photos/' } }, { [P]: 'docs/' }, false),
  c('StringEqualsIfExists: present and equal matches', O, { StringEqualsIfExists: { [P]: 'photos/' } }, { [P]: 'photos/' }, true),
  c('StringNotEqualsIfExists: absent key matches', O, { StringNotEqualsIfExists: { [P]: 'photos/' } }, {}, true),
  c('StringNotEqualsIfExists: present and equal does not match', O, { StringNotEqualsIfExists: { [P]: 'photos/' } }, { [P]: 'photos/' }, false),
  c('StringLikeIfExists: absent key matches', O, { StringLikeIfExists: { [P]: 'home/*' } }, {}, true),
  c('StringLikeIfExists: present and not like does not match', O, { StringLikeIfExists: { [P]: 'home/*' } }, { [P]: 'tmp/' }, false),
  c('StringEqualsIgnoreCaseIfExists: absent key matches', O, { StringEqualsIgnoreCaseIfExists: { [P]: 'x' } }, {}, true),
  c('Multiple keys in one operator are AND\'ed: one fails', SRC.condition, { StringEquals: { [P]: 'photos/', 's3:delimiter': '/' } }, { [P]: 'photos/', 's3:delimiter': '|' }, false),
  c('Multiple keys in one operator are AND\'ed: both hold', SRC.condition, { StringEquals: { [P]: 'photos/', 's3:delimiter': '/' } }, { [P]: 'photos/', 's3:delimiter': '/' }, true),
  c('Multiple operators are AND\'ed: both hold', SRC.condition, { StringEquals: { [P]: 'photos/' }, StringLike: { 'aws:UserAgent': 'aws-cli/*' } }, { [P]: 'photos/', 'aws:UserAgent': 'aws-cli/2.15' }, true),
  c('Multiple operators are AND\'ed: one fails', SRC.condition, { StringEquals: { [P]: 'photos/' }, StringLike: { 'aws:UserAgent': 'aws-cli/*' } }, { [P]: 'photos/', 'aws:UserAgent': 'curl/8' }, false),
];
