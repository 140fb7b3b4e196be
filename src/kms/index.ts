// Public surface of kms/: cloud KMS public keys (awskms://, gcpkms://) resolved, checked and kept fresh.

export { type AwsKmsProviderOptions, createAwsKmsProvider } from "./aws-kms-provider.ts";
export { crc32c } from "./crc32c.ts";
export { createGcpKmsProvider, type GcpKmsProviderOptions } from "./gcp-kms-provider.ts";
export {
  DEFAULT_KMS_REFRESH_MS,
  DEFAULT_MAX_KMS_KEYS,
  type KmsKeyListener,
  KmsKeyring,
  type KmsKeyringOptions,
  type KmsKeyState,
} from "./kms-keyring.ts";
export { createKmsProviders, type KmsProvidersOptions } from "./kms-providers.ts";
export { AWS_KMS_FORMS, GCP_KMS_FORM, parseKmsReference } from "./parse-kms-reference.ts";
export {
  type AwsKmsReference,
  DEFAULT_KMS_TIMEOUT_MS,
  type FetchKmsPublicKey,
  type GcpKmsReference,
  KmsError,
  type KmsErrorCode,
  type KmsProvider,
  type KmsPublicKey,
  type KmsReference,
} from "./types.ts";
