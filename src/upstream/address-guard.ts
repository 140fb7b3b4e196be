import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { BlockList, isIP } from "node:net";

/**
 * Addresses a redirect or token realm must not make pullgate fetch from unless the operator allows
 * it: loopback, link-local (cloud metadata at 169.254.169.254), private and shared ranges, unique
 * local IPv6, unspecified, multicast, and IPv4-mapped forms of all of them. A redirect to one of
 * these could reach pullgate's own admin listener or a cluster-internal service and stream its
 * answer to the client as a blob (SSRF).
 */
const INTERNAL = new BlockList();
for (const [net, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  INTERNAL.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const) {
  INTERNAL.addSubnet(net, prefix, "ipv6");
}

export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return INTERNAL.check(address, "ipv4");
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return INTERNAL.check(mapped[1] as string, "ipv4");
    return INTERNAL.check(address, "ipv6");
  }
  return true; // not an address: refuse rather than guess
}

/** The host of a URL as an address literal, without IPv6 brackets; undefined for a DNS name. */
export function addressLiteral(hostname: string): string | undefined {
  const bare = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
  return isIP(bare) ? bare : undefined;
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A dns.lookup for the connections of redirect targets: resolves as usual, then refuses internal
 * addresses, so a name that resolves (or re-resolves: DNS rebinding) to one is never connected to.
 */
export function publicOnlyLookup(hostname: string, options: object, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, "");
    const list = addresses as LookupAddress[];
    const allowed = list.filter((a) => !isInternalAddress(a.address));
    if (allowed.length === 0) {
      const refused = Object.assign(new Error(`${hostname} resolves to an internal address`), {
        code: "PULLGATE_INTERNAL_ADDRESS",
      });
      return callback(refused, "");
    }
    if ((options as { all?: boolean }).all) return callback(null, allowed);
    const first = allowed[0] as LookupAddress;
    return callback(null, first.address, first.family);
  });
}
