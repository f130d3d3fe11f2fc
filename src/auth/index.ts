// Public entry point of the auth module: SigV4 verification, the request-body decoder, the
// S3 checksum helpers and the values bucket policies need. The HTTP layer imports from here.
//
// Typical use in the HTTP layer:
//   const q = req.url.indexOf('?');
//   const auth = await verifySigV4(
//     { method: req.method, rawPath: q < 0 ? req.url : req.url.slice(0, q), rawQuery: q < 0 ? '' : req.url.slice(q + 1),
//       headers: req.headersDistinct },
//     lookup, { now: new Date(), service: 's3', region });     // throws S3Error; {kind:'anonymous'} if unsigned
//   const body = createPayloadDecoder(auth, req.headers, { defaultChecksum: 'CRC64NVME' });
//   await pipeline(req, body, sink);   // sink must not commit before 'end'; body.checksum is then set
// For service 'kms' without x-amz-content-sha256: buffer the body first and pass its hex SHA-256
// as `bodySha256` in the request (the signature covers the body hash).
export { verifySigV4, signatureV4Context, payloadModeOf, parseAmzDate, formatAmzDate, DEFAULT_MAX_SKEW_MS, MAX_PRESIGNED_EXPIRES } from './sigv4.ts';
export type { SignatureV4Context } from './sigv4.ts';
export { createPayloadDecoder, PayloadDecoder } from './payload.ts';
export type { PayloadDecoderOptions, VerifiedChecksum } from './payload.ts';
export {
  CHECKSUM_ALGORITHMS,
  checksumAlgorithmOfHeader,
  checksumBase64,
  checksumHeaderName,
  createChecksummer,
  crc32c,
  Crc64Nvme,
  isValidChecksumValue,
} from './checksums.ts';
export type { ChecksumAlgorithm, Checksummer } from './checksums.ts';
export { clearSigningKeyCache, uriEncode } from './canonical.ts';
export type { HeaderMap } from './canonical.ts';
export type { AuthResult, Credential, CredentialLookup, PayloadMode, SignedAuth, SigV4Request, VerifyOptions } from './types.ts';
