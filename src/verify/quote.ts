/** A bounded, JSON-quoted echo of untrusted text for report details (no control characters survive). */
export function quote(value: string, max = 80): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
}
