// Vectors for the typed operators: Numeric* (decimal parsing), Date* (ISO 8601 and epoch
// seconds), Bool, BinaryEquals and IpAddress / NotIpAddress (IPv4 and IPv6 CIDR blocks,
// plain addresses, IPv4-mapped IPv6), each with absent keys and the IfExists form.
import { SRC, conditionCase as c, type Vector } from './helpers.ts';

const O = SRC.operators;
const E = SRC.edge;
const MK = 's3:max-keys';
const NOW = 'aws:CurrentTime';
const EPOCH = 'aws:EpochTime';
const IP = 'aws:SourceIp';
const DATES = 'https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_aws-dates.html';
const window = { DateGreaterThan: { [NOW]: '2020-04-01T00:00:00Z' }, DateLessThan: { [NOW]: '2020-06-30T23:59:59Z' } };

export const typedCases: Vector[] = [
  c('NumericEquals: equal integers', O, { NumericEquals: { [MK]: '10' } }, { [MK]: '10' }, true),
  c('NumericEquals: 10 equals 10.0 (numbers, not strings)', E('NumericEquals'), { NumericEquals: { [MK]: '10' } }, { [MK]: '10.0' }, true),
  c('NumericEquals: a leading zero is decimal, not octal (010 = 10)', E('NumericEquals'), { NumericEquals: { [MK]: '010' } }, { [MK]: '10' }, true),
  c('NumericEquals: a JSON number policy value', E('NumericEquals'), { NumericEquals: { [MK]: 10 } }, { [MK]: '10' }, true),
  c('NumericEquals: a request value that is not a number does not match', E('NumericEquals'), { NumericEquals: { [MK]: '10' } }, { [MK]: 'ten' }, false),
  c('NumericEquals: absent key does not match', O, { NumericEquals: { [MK]: '10' } }, {}, false),
  c('NumericNotEquals: equal does not match', O, { NumericNotEquals: { [MK]: '10' } }, { [MK]: '10' }, false),
  c('NumericNotEquals: different matches', O, { NumericNotEquals: { [MK]: '10' } }, { [MK]: '11' }, true),
  c('NumericNotEquals: absent key matches (negated operator)', O, { NumericNotEquals: { [MK]: '10' } }, {}, true),
  c('NumericLessThan: 5 < 10', O, { NumericLessThan: { [MK]: '10' } }, { [MK]: '5' }, true),
  c('NumericLessThan: 10 is not < 10', O, { NumericLessThan: { [MK]: '10' } }, { [MK]: '10' }, false),
  c('NumericLessThan: compares numerically (9 < 10, though "9" > "10" as text)', E('NumericLessThan'), { NumericLessThan: { [MK]: '10' } }, { [MK]: '9' }, true),
  c('NumericLessThan: absent key does not match', O, { NumericLessThan: { [MK]: '10' } }, {}, false),
  c('NumericLessThanIfExists: absent key matches', O, { NumericLessThanIfExists: { [MK]: '10' } }, {}, true),
  c('NumericLessThanEquals: 10 <= 10', O, { NumericLessThanEquals: { [MK]: '10' } }, { [MK]: '10' }, true),
  c('NumericLessThanEquals: 10.5 is not <= 10', O, { NumericLessThanEquals: { [MK]: '10' } }, { [MK]: '10.5' }, false),
  c('NumericGreaterThan: -1 > -2', E('NumericGreaterThan'), { NumericGreaterThan: { [MK]: '-2' } }, { [MK]: '-1' }, true),
  c('NumericGreaterThan: 1000 is not > 1000', O, { NumericGreaterThan: { [MK]: 1000 } }, { [MK]: '1000' }, false),
  c('NumericGreaterThanEquals: 1.5 >= 1.50', E('NumericGreaterThanEquals'), { NumericGreaterThanEquals: { [MK]: '1.50' } }, { [MK]: '1.5' }, true),
  c('NumericGreaterThanEquals: values OR\'ed (>= 100 or >= 5)', O, { NumericGreaterThanEquals: { [MK]: ['100', '5'] } }, { [MK]: '7' }, true),

  c('DateLessThan: ISO time before the limit', O, { DateLessThan: { [NOW]: '2030-01-01T00:00:00Z' } }, { [NOW]: '2024-06-01T12:00:00Z' }, true),
  c('DateGreaterThan: ISO time not after the limit', O, { DateGreaterThan: { [NOW]: '2030-01-01T00:00:00Z' } }, { [NOW]: '2024-06-01T12:00:00Z' }, false),
  c('DateEquals: ISO policy value against epoch seconds', O, { DateEquals: { [EPOCH]: '2024-01-01T00:00:00Z' } }, { [EPOCH]: '1704067200' }, true),
  c('DateEquals: epoch policy value against ISO request value', O, { DateEquals: { [NOW]: '1704067200' } }, { [NOW]: '2024-01-01T00:00:00Z' }, true),
  c('DateEquals: milliseconds .000 are the same instant', E('DateEquals'), { DateEquals: { [NOW]: '2024-01-01T00:00:00.000Z' } }, { [NOW]: '2024-01-01T00:00:00Z' }, true),
  c('DateLessThanEquals: the same instant written with a +02:00 offset', E('DateLessThanEquals'), { DateLessThanEquals: { [NOW]: '2024-01-01T02:00:00+02:00' } }, { [NOW]: '2024-01-01T00:00:00Z' }, true),
  c('DateLessThan: the same instant with an offset is not earlier', E('DateLessThan'), { DateLessThan: { [NOW]: '2024-01-01T02:00:00+02:00' } }, { [NOW]: '2024-01-01T00:00:00Z' }, false),
  c('DateGreaterThanEquals: a date without time is midnight UTC', E('DateGreaterThanEquals'), { DateGreaterThanEquals: { [NOW]: '2024-01-01' } }, { [NOW]: '2024-01-01T00:00:00Z' }, true),
  c('DateGreaterThan: one second after midnight is after the date', E('DateGreaterThan'), { DateGreaterThan: { [NOW]: '2024-01-01' } }, { [NOW]: '2024-01-01T00:00:01Z' }, true),
  c('DateNotEquals: equal instants do not match', O, { DateNotEquals: { [NOW]: '2024-01-01T00:00:00Z' } }, { [NOW]: '2024-01-01T00:00:00Z' }, false),
  c('DateNotEquals: absent key matches (negated operator)', O, { DateNotEquals: { [NOW]: '2024-01-01T00:00:00Z' } }, {}, true),
  c('DateLessThan: absent key does not match', O, { DateLessThan: { [NOW]: '2030-01-01T00:00:00Z' } }, {}, false),
  c('DateLessThanIfExists: absent key matches', O, { DateLessThanIfExists: { [NOW]: '2030-01-01T00:00:00Z' } }, {}, true),
  c('DateLessThan: a request value that is not a date does not match', E('DateLessThan'), { DateLessThan: { [NOW]: '2030-01-01T00:00:00Z' } }, { [NOW]: 'yesterday' }, false),
  c('Date window (AWS example): inside the window', DATES, window, { [NOW]: '2020-05-15T08:00:00Z' }, true),
  c('Date window (AWS example): after the window', DATES, window, { [NOW]: '2020-07-01T00:00:00Z' }, false),
  c('Date window (AWS example): before the window', DATES, window, { [NOW]: '2020-03-31T23:59:59Z' }, false),

  c('Bool: true matches true', O, { Bool: { 'aws:SecureTransport': 'true' } }, { 'aws:SecureTransport': 'true' }, true),
  c('Bool: true does not match false', O, { Bool: { 'aws:SecureTransport': 'true' } }, { 'aws:SecureTransport': 'false' }, false),
  c('Bool: case-insensitive (True vs TRUE)', E('Bool'), { Bool: { 'aws:SecureTransport': 'True' } }, { 'aws:SecureTransport': 'TRUE' }, true),
  c('Bool: a JSON boolean policy value', E('Bool'), { Bool: { 'aws:SecureTransport': true } }, { 'aws:SecureTransport': 'true' }, true),
  c('Bool: false matches false', O, { Bool: { 'aws:SecureTransport': 'false' } }, { 'aws:SecureTransport': 'false' }, true),
  c('Bool: absent key does not match', O, { Bool: { 'aws:SecureTransport': 'false' } }, {}, false),
  c('BoolIfExists: absent key matches', O, { BoolIfExists: { 'aws:MultiFactorAuthPresent': 'true' } }, {}, true),
  c('Bool: a request value that is not a boolean does not match', E('Bool'), { Bool: { 'aws:SecureTransport': 'true' } }, { 'aws:SecureTransport': 'yes' }, false),

  c('BinaryEquals: equal base64 values', O, { BinaryEquals: { 'x:blob': 'QmluYXJ5VmFsdWVJbkJhc2U2NA==' } }, { 'x:blob': 'QmluYXJ5VmFsdWVJbkJhc2U2NA==' }, true),
  c('BinaryEquals: different bytes do not match', O, { BinaryEquals: { 'x:blob': 'QmluYXJ5VmFsdWVJbkJhc2U2NA==' } }, { 'x:blob': 'b3RoZXI=' }, false),
  c('BinaryEquals: absent key does not match', O, { BinaryEquals: { 'x:blob': 'QmluYXJ5VmFsdWVJbkJhc2U2NA==' } }, {}, false),
  c('BinaryEqualsIfExists: absent key matches', O, { BinaryEqualsIfExists: { 'x:blob': 'b3RoZXI=' } }, {}, true),

  c('IpAddress: IPv4 inside a /24', O, { IpAddress: { [IP]: '203.0.113.0/24' } }, { [IP]: '203.0.113.77' }, true),
  c('IpAddress: IPv4 outside a /24', O, { IpAddress: { [IP]: '203.0.113.0/24' } }, { [IP]: '203.0.114.1' }, false),
  c('IpAddress: /25 lower half contains .127', E('IpAddress'), { IpAddress: { [IP]: '203.0.113.0/25' } }, { [IP]: '203.0.113.127' }, true),
  c('IpAddress: /25 lower half does not contain .128', E('IpAddress'), { IpAddress: { [IP]: '203.0.113.0/25' } }, { [IP]: '203.0.113.128' }, false),
  c('IpAddress: a plain address matches itself only', O, { IpAddress: { [IP]: '203.0.113.5' } }, { [IP]: '203.0.113.5' }, true),
  c('IpAddress: a plain address does not match a neighbour', O, { IpAddress: { [IP]: '203.0.113.5' } }, { [IP]: '203.0.113.6' }, false),
  c('IpAddress: /32', O, { IpAddress: { [IP]: '198.51.100.7/32' } }, { [IP]: '198.51.100.7' }, true),
  c('IpAddress: /0 contains every IPv4 address', E('IpAddress'), { IpAddress: { [IP]: '0.0.0.0/0' } }, { [IP]: '8.8.8.8' }, true),
  c('IpAddress: several blocks are OR\'ed', O, { IpAddress: { [IP]: ['192.0.2.0/24', '198.51.100.0/24'] } }, { [IP]: '198.51.100.9' }, true),
  c('IpAddress: IPv6 inside 2001:db8::/32', O, { IpAddress: { [IP]: '2001:DB8::/32' } }, { [IP]: '2001:db8:85a3::8a2e:370:7334' }, true),
  c('IpAddress: IPv6 written in full form, upper case', E('IpAddress'), { IpAddress: { [IP]: '2001:db8::/32' } }, { [IP]: '2001:0DB8:0000:0000:0000:0000:0000:0001' }, true),
  c('IpAddress: IPv6 outside the block', O, { IpAddress: { [IP]: '2001:db8::/32' } }, { [IP]: '2001:db9::1' }, false),
  c('IpAddress: an IPv4 address is not in an IPv6 block', E('IpAddress'), { IpAddress: { [IP]: '2001:db8::/32' } }, { [IP]: '192.0.2.1' }, false),
  c('IpAddress: IPv4-mapped IPv6 (::ffff:a.b.c.d) counts as IPv4', E('IpAddress'), { IpAddress: { [IP]: '203.0.113.0/24' } }, { [IP]: '::ffff:203.0.113.9' }, true),
  c('IpAddress: ::1 in ::1/128', E('IpAddress'), { IpAddress: { [IP]: '::1/128' } }, { [IP]: '::1' }, true),
  c('IpAddress: absent key does not match', O, { IpAddress: { [IP]: '0.0.0.0/0' } }, {}, false),
  c('IpAddressIfExists: absent key matches', O, { IpAddressIfExists: { [IP]: '192.0.2.0/24' } }, {}, true),
  c('IpAddress: a request value that is not an address does not match', E('IpAddress'), { IpAddress: { [IP]: '0.0.0.0/0' } }, { [IP]: 'localhost' }, false),
  c('NotIpAddress: inside the block does not match', O, { NotIpAddress: { [IP]: '192.0.2.0/24' } }, { [IP]: '192.0.2.1' }, false),
  c('NotIpAddress: outside the block matches', O, { NotIpAddress: { [IP]: '192.0.2.0/24' } }, { [IP]: '10.0.0.1' }, true),
  c('NotIpAddress: absent key matches (negated operator)', O, { NotIpAddress: { [IP]: '192.0.2.0/24' } }, {}, true),
  c('NotIpAddress: in any of several blocks does not match', O, { NotIpAddress: { [IP]: ['192.0.2.0/24', '2001:db8::/32'] } }, { [IP]: '2001:db8::5' }, false),
];
