/**
 * What the benchmark's servers and clients agree on: ports, the request size, and the shape of a
 * client's one-line JSON report. Shared by servers.ts (server namespace) and client.ts (client
 * namespace), which run as separate programs.
 */

/** TCP echo: echoes every byte and holds the connection until the client closes it. */
export const ECHO_PORT = 7001;
/** UDP echo: sends every datagram back to its source. */
export const UDP_ECHO_PORT = 7002;
/** TCP one-shot: reads one request of REQUEST_BYTES, writes it back, then closes (FIN) first. */
export const ONE_SHOT_PORT = 7003;
/** The iperf3 server's port (its default). */
export const IPERF_PORT = 5201;
/** Bytes in one request and one response. */
export const REQUEST_BYTES = 64;

/** The modes of the client program. */
export type ClientMode = 'cps' | 'rr' | 'udp' | 'idle';

/** What the client prints as its last stdout line (fields by mode; `errors` always). */
export interface ClientReport {
  mode: ClientMode;
  /** Exchanges or connections that failed or timed out. */
  errors: number;
  /** cps/udp: completed exchanges per second. */
  perSecond?: number;
  /** cps/udp/rr: completed exchanges counted. */
  count?: number;
  /** rr: round-trip percentiles in microseconds. */
  p50Us?: number;
  p99Us?: number;
  /** idle: connections established end to end and held. */
  held?: number;
  /** The first error message seen, for diagnosis. */
  firstError?: string;
}
