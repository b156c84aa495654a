/**
 * One connection per host for the whole run. A host that could not be reached stays unreachable for the run:
 * its failed connect is remembered and every later `get` rejects with the same error, without retrying.
 */
import { openLocalConnection } from './local.js';
import { openSshConnection } from './ssh.js';
import type { Connection, ConnectionSpec } from './types.js';

export type ConnectionOpener = (spec: ConnectionSpec) => Promise<Connection>;

/** Told of every connection really opened: the spec and how long the handshake took (host key checked). */
export type OpenedListener = (spec: ConnectionSpec, ms: number) => void;

/** Picks the transport the spec asks for. */
export function openConnection(spec: ConnectionSpec): Promise<Connection> {
  return spec.connection === 'local' ? openLocalConnection(spec) : openSshConnection(spec);
}

export class ConnectionPool {
  private readonly byHost = new Map<string, Promise<Connection>>();
  private openedCount = 0;

  constructor(
    private readonly open: ConnectionOpener = openConnection,
    private readonly onOpened?: OpenedListener,
  ) {}

  /** How many connections were really opened (successfully) during the run. */
  get opened(): number {
    return this.openedCount;
  }

  /** The host's connection, opened on first use; concurrent callers share the same attempt. */
  get(spec: ConnectionSpec): Promise<Connection> {
    const known = this.byHost.get(spec.name);
    if (known) return known;
    const started = Date.now();
    const attempt = this.open(spec).then((connection) => {
      this.openedCount++;
      this.onOpened?.(spec, Date.now() - started);
      return connection;
    });
    // The rejection is kept and handed to every caller; this only stops Node reporting it as unhandled.
    attempt.catch(() => undefined);
    this.byHost.set(spec.name, attempt);
    return attempt;
  }

  /** Forget a host's connection (for example after it died), closing it if it was open. */
  async drop(host: string): Promise<void> {
    const known = this.byHost.get(host);
    this.byHost.delete(host);
    if (!known) return;
    try {
      await (await known).close();
    } catch {
      // It failed to open or is already gone: nothing to close.
    }
  }

  async closeAll(): Promise<void> {
    const all = [...this.byHost.values()];
    this.byHost.clear();
    await Promise.all(
      all.map(async (attempt) => {
        try {
          await (await attempt).close();
        } catch {
          // Never opened, or already lost.
        }
      }),
    );
  }
}
