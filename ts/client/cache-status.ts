// What our status request returns (crates/scache-core/src/server/snapshot.rs), typed: the JSON
// document's snake_case names become camelCase, and its shape is checked on the way in.

/** A destination's binding to an endpoint (save_dest). */
export interface BindingStatus {
  /** The endpoint label the destination is bound to. */
  endpoint: string;
  /** The destination property saved with the binding. */
  property: string;
  /** Milliseconds until the binding expires. */
  ttlMs: number;
}

export interface DestinationStatus {
  /** The destination label (e.g. `smtp\nexample.com\n`). */
  label: string;
  bindings: BindingStatus[];
}

/** A cached connection (save_endp). */
export interface ConnectionStatus {
  /** The endpoint property saved with the connection. */
  property: string;
  /** Milliseconds since the connection was saved. */
  ageMs: number;
  /** Milliseconds until it expires (and is closed). */
  ttlMs: number;
}

export interface EndpointStatus {
  /** The endpoint label (e.g. `smtp\n192.0.2.1\n25\n0\n`). */
  label: string;
  /** Oldest first. */
  connections: ConnectionStatus[];
}

/**
 * The cache right now. The counts are complete; the lists hold at most the `limit` asked for
 * (destinations and endpoints each).
 */
export interface CacheStatus {
  destinationsCount: number;
  endpointsCount: number;
  connectionsCount: number;
  destinations: DestinationStatus[];
  endpoints: EndpointStatus[];
}

/** Parses the server's snapshot; throws (with what is wrong) when it is not one. */
export function parseCacheStatus(json: string): CacheStatus {
  const document = JSON.parse(json) as unknown;
  const object = (value: unknown, where: string): Record<string, unknown> => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where} is not an object`);
    return value as Record<string, unknown>;
  };
  const number = (value: Record<string, unknown>, name: string, where: string): number => {
    const field = value[name];
    if (typeof field !== 'number') throw new Error(`${where}.${name} is not a number`);
    return field;
  };
  const text = (value: Record<string, unknown>, name: string, where: string): string => {
    const field = value[name];
    if (typeof field !== 'string') throw new Error(`${where}.${name} is not a string`);
    return field;
  };
  const list = <T>(value: Record<string, unknown>, name: string, where: string, each: (item: unknown, where: string) => T): T[] => {
    const field = value[name];
    if (!Array.isArray(field)) throw new Error(`${where}.${name} is not a list`);
    return field.map((item, index) => each(item, `${where}.${name}[${index}]`));
  };
  const root = object(document, 'the snapshot');
  const where = 'snapshot';
  return {
    destinationsCount: number(root, 'destinations_count', where),
    endpointsCount: number(root, 'endpoints_count', where),
    connectionsCount: number(root, 'connections_count', where),
    destinations: list(root, 'destinations', where, (item, at) => {
      const destination = object(item, at);
      return {
        label: text(destination, 'label', at),
        bindings: list(destination, 'bindings', at, (binding, at) => {
          const b = object(binding, at);
          return { endpoint: text(b, 'endpoint', at), property: text(b, 'property', at), ttlMs: number(b, 'ttl_ms', at) };
        }),
      };
    }),
    endpoints: list(root, 'endpoints', where, (item, at) => {
      const endpoint = object(item, at);
      return {
        label: text(endpoint, 'label', at),
        connections: list(endpoint, 'connections', at, (connection, at) => {
          const c = object(connection, at);
          return { property: text(c, 'property', at), ageMs: number(c, 'age_ms', at), ttlMs: number(c, 'ttl_ms', at) };
        }),
      };
    }),
  };
}
