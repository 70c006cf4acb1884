/** Settings of any AWS SDK client for a local endpoint: fixed region and dummy credentials, no real AWS involved. */
export function localAwsConfig(endpoint: string): { endpoint: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string } } {
  return { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
}
