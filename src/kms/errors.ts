// KMS errors: AWS KMS's exception names ("__type") with their HTTP statuses. The KMS domain
// throws KmsError; kms/api renders it as `{"__type": name, "message": ...}`.

export const KMS_ERRORS = {
  AccessDeniedException: 400,
  AlreadyExistsException: 400,
  DisabledException: 400,
  DryRunOperationException: 412,
  IncorrectKeyException: 400,
  InvalidArnException: 400,
  InvalidCiphertextException: 400,
  InvalidGrantIdException: 400,
  InvalidGrantTokenException: 400,
  InvalidKeyUsageException: 400,
  InvalidMarkerException: 400,
  InvalidSignatureException: 400,
  KMSInternalException: 500,
  KMSInvalidStateException: 400,
  LimitExceededException: 400,
  MalformedPolicyDocumentException: 400,
  MissingAuthenticationTokenException: 400,
  NotAuthorizedException: 400,
  NotFoundException: 400,
  SerializationException: 400,
  TagException: 400,
  ThrottlingException: 400,
  UnknownOperationException: 400,
  UnrecognizedClientException: 400,
  UnsupportedOperationException: 400,
  ValidationException: 400,
} as const;

export type KmsErrorName = keyof typeof KMS_ERRORS;

export class KmsError extends Error {
  readonly status: number;
  constructor(
    readonly type: KmsErrorName,
    message: string,
  ) {
    super(message);
    this.name = type;
    this.status = KMS_ERRORS[type];
  }
}

export function isKmsError(e: unknown): e is KmsError {
  return e instanceof KmsError;
}
