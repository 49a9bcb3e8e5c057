import { BlockList, isIPv4 } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { parseCidr } from '../config/load.js';

/** How the client sees this exchange: the scheme and authority it dialled, and who it is. */
export interface ClientView {
  scheme: 'http' | 'https';
  /** Host with port as the client wrote it, e.g. "registry.example.com:5443". */
  host: string;
  /** The client's address: the peer, or the leftmost untrusted hop when the peer is a trusted proxy. */
  clientIp: string;
  /** Address chain to send upstream as X-Forwarded-For. */
  forwardedFor: string;
  peerTrusted: boolean;
}

const HOST_PATTERN = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/;

/** The name part of a Host value ("[::1]" of "[::1]:5443"), or null when it cannot be a host. */
export function hostName(value: string): string | null {
  return HOST_PATTERN.exec(value)?.[1] ?? null;
}

export class PeerTrust {
  private readonly list = new BlockList();
  private readonly empty: boolean;

  constructor(cidrs: string[]) {
    for (const text of cidrs) {
      const cidr = parseCidr(text);
      if (cidr) this.list.addSubnet(cidr.address, cidr.prefix, cidr.family);
    }
    this.empty = cidrs.length === 0;
  }

  trusts(address: string): boolean {
    if (this.empty || !address) return false;
    const plain = unmapIPv4(address);
    return this.list.check(plain, isIPv4(plain) ? 'ipv4' : 'ipv6');
  }

  /**
   * Client-sent Forwarded / X-Forwarded-* are believed only from a trusted peer; from anyone else
   * they could steer the registry's Location headers, so they are ignored. Returns null when the
   * Host cannot be a host (the caller answers 400).
   */
  view(req: IncomingMessage): ClientView | null {
    const peer = unmapIPv4(req.socket.remoteAddress ?? '');
    const ownScheme = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
    const ownHost = req.headers.host ?? '';
    if (!this.trusts(peer)) {
      if (hostName(ownHost) === null) return null;
      return { scheme: ownScheme, host: ownHost, clientIp: peer, forwardedFor: peer, peerTrusted: false };
    }
    const proto = firstValue(req.headers['x-forwarded-proto']);
    const host = firstValue(req.headers['x-forwarded-host']) || ownHost;
    if (hostName(host) === null) return null;
    const chain = firstValue(req.headers['x-forwarded-for'], false);
    const hops = chain ? chain.split(',').map((s) => s.trim()).filter(Boolean) : [];
    return {
      scheme: proto === 'https' || proto === 'http' ? proto : ownScheme,
      host,
      clientIp: hops[0] ?? peer,
      forwardedFor: [...hops, peer].join(', '),
      peerTrusted: true,
    };
  }
}

/** 127.0.0.0/8 or ::1: a caller on this host (an operator's curl, a sidecar, `kubectl exec`). */
export function isLoopback(address: string): boolean {
  const plain = unmapIPv4(address);
  return plain === '::1' || (isIPv4(plain) && plain.startsWith('127.'));
}

function firstValue(header: string | string[] | undefined, firstOnly = true): string {
  const value = Array.isArray(header) ? header.join(',') : header ?? '';
  return firstOnly ? value.split(',')[0]!.trim().toLowerCase() : value;
}

function unmapIPv4(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}
