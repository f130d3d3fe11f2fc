// Small XML codec for the S3 API: a tiny builder for responses (element order matters to some
// clients, so documents are built explicitly) and a parser for request bodies.
import { XMLParser } from 'fast-xml-parser';
import { S3Error } from '../shared/errors.ts';

export const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

/** A child is [name, value]; value is text, a number/boolean, or a list of children. */
export type XmlNode = [string, XmlValue];
export type XmlValue = string | number | boolean | XmlNode[] | undefined | null;

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Escape text for XML 1.0; control characters become numeric references as S3 emits them. */
export function escapeXml(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[&<>"']|[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, (c) => ESC[c] ?? `&#x${c.charCodeAt(0).toString(16).toUpperCase()};`);
}

function render(nodes: XmlNode[], out: string[]): void {
  for (const [name, value] of nodes) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) {
      out.push(`<${name}>`);
      render(value, out);
      out.push(`</${name}>`);
    } else {
      out.push(`<${name}>${escapeXml(String(value))}</${name}>`);
    }
  }
}

/** A whole document: `<?xml ...?><Root xmlns=...>children</Root>`. */
export function xmlDocument(root: string, children: XmlNode[], ns: string | null = S3_NS): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>\n', ns ? `<${root} xmlns="${ns}">` : `<${root}>`];
  render(children, out);
  out.push(`</${root}>`);
  return out.join('');
}

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: true,
  isArray: (name) => name === 'Part' || name === 'Object' || name === 'Rule' || name === 'EncryptionType' || name === 'Tag',
});

/** Parse a request body; anything that is not well-formed XML is MalformedXML. */
export function parseXml(body: Buffer): Record<string, unknown> {
  const text = body.toString('utf8');
  if (!text.trim().startsWith('<')) throw new S3Error('MalformedXML');
  try {
    const doc = parser.parse(text, true);
    if (typeof doc !== 'object' || doc === null) throw new S3Error('MalformedXML');
    return doc as Record<string, unknown>;
  } catch (e) {
    if (e instanceof S3Error) throw e;
    throw new S3Error('MalformedXML');
  }
}

export function isoDate(ms: number): string {
  return new Date(ms).toISOString();
}

export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}
