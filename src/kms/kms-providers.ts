import { type AwsKmsProviderOptions, createAwsKmsProvider } from "./aws-kms-provider.ts";
import { createGcpKmsProvider, type GcpKmsProviderOptions } from "./gcp-kms-provider.ts";
import type { KmsProvider, KmsPublicKey, KmsReference } from "./types.ts";

export interface KmsProvidersOptions {
  aws?: AwsKmsProviderOptions;
  gcp?: GcpKmsProviderOptions;
}

/**
 * Every provider behind one `fetchPublicKey`, each created (and its SDK imported) only when a
 * reference of its kind is first fetched: a configuration without KMS keys loads neither SDK.
 */
export function createKmsProviders(options: KmsProvidersOptions = {}): KmsProvider {
  let aws: KmsProvider | undefined;
  let gcp: KmsProvider | undefined;
  return {
    fetchPublicKey(ref: KmsReference, signal: AbortSignal): Promise<KmsPublicKey> {
      switch (ref.provider) {
        case "awskms":
          aws ??= createAwsKmsProvider(options.aws);
          return aws.fetchPublicKey(ref, signal);
        case "gcpkms":
          gcp ??= createGcpKmsProvider(options.gcp);
          return gcp.fetchPublicKey(ref, signal);
      }
    },
    close() {
      aws?.close();
      gcp?.close();
    },
  };
}
