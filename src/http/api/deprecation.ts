/**
 * Deprecated routes (SPEC §11): a route that declares `config.deprecated` answers with
 *   Deprecation: @<unix seconds>             (RFC 9745 §2, a Structured Field Date)
 *   Sunset: <HTTP-date>                      (RFC 8594 §3)
 *   Link: <successor>; rel="successor-version" (RFC 5829 link relation)
 * and is marked `deprecated: true` in the OpenAPI document.
 */
import type { FastifyReply } from 'fastify';

export interface DeprecationInfo {
  /** When the route was deprecated (ISO date). */
  since: string;
  /** When it stops working (ISO date). */
  sunset: string;
  /** The path that replaces it, under the same server. */
  successor: string;
}

export function setDeprecationHeaders(reply: FastifyReply, info: DeprecationInfo): void {
  reply.header('deprecation', `@${Math.floor(Date.parse(info.since) / 1000)}`);
  reply.header('sunset', new Date(info.sunset).toUTCString());
  reply.header('link', `<${info.successor}>; rel="successor-version"`);
}
