/**
 * The client address a request is counted against, the same for HTTP and websockets: the
 * socket's peer, or — behind TRUST_PROXY trusted proxy hops — the address those proxies put in
 * X-Forwarded-For (proxy-addr, as express uses it). IPv4-mapped IPv6 addresses count as their
 * IPv4 address; other IPv6 addresses count by their /64 network (one subscriber's allocation),
 * so rotating through one's own /64 does not escape the per-address limit. A loopback address is
 * not counted: it is a proxy or a job on this host (without TRUST_PROXY every client behind a
 * local proxy would share its one address and its one limit), never a client of its own.
 */
import type { IncomingMessage } from 'node:http';
import ipaddr from 'ipaddr.js';
import proxyaddr from 'proxy-addr';

export function clientAddressOf(trustProxyHops: number): (req: IncomingMessage) => string | undefined {
  // The peer and each X-Forwarded-For entry from the right: the first `trustProxyHops` are our proxies.
  const trusted = (_addr: string, i: number) => i < trustProxyHops;
  return (req) => (req.socket?.remoteAddress ? addressKey(proxyaddr(req, trusted)) : undefined);
}

/** The key an address is counted under: IPv4 as is, IPv6 by its /64, loopback not at all. */
export function addressKey(raw: string): string | undefined {
  if (!ipaddr.isValid(raw)) return undefined;
  let addr = ipaddr.parse(raw);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  if (addr.range() === 'loopback') return undefined;
  if (addr.kind() === 'ipv4') return addr.toString();
  const parts = (addr as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16));
  return `${parts.join(':')}::/64`;
}
