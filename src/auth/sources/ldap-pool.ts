/**
 * A few directory connections kept open between logins: a login then costs its searches and
 * binds, not a TCP and TLS handshake each (docker_auth opens one per login; zot serialises every
 * login on one). At most `size` rounds run at once; more wait their turn, so a burst of logins
 * never becomes a burst of connections at the directory.
 *
 * Every round starts by binding as the service account, so what a connection was last bound as
 * does not matter. A connection that failed is closed, never reused. One kept idle may have been
 * closed by the directory meanwhile (servers drop idle connections): a round that fails on a
 * reused connection is tried once more on a fresh one before the directory counts as down.
 */
import type { Client } from 'ldapts';

export class LdapPool {
  private readonly idle: { client: Client; since: number }[] = [];
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly connect: () => Promise<Client>,
    readonly size: number,
    /** Idle connections older than this are closed rather than reused. */
    private readonly idleMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  async use<T>(round: (client: Client) => Promise<T>): Promise<T> {
    await this.slot();
    try {
      const reused = this.takeIdle();
      if (reused) {
        try {
          return await this.keepAfter(reused, round);
        } catch {
          // Fall through to a fresh connection: the kept one may have been dropped by the server.
        }
      }
      return await this.keepAfter(await this.connect(), round);
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.idle.splice(0).map(({ client }) => client.unbind().catch(() => undefined)));
  }

  private async keepAfter<T>(client: Client, round: (client: Client) => Promise<T>): Promise<T> {
    try {
      const result = await round(client);
      if (this.closed) await client.unbind().catch(() => undefined);
      else this.idle.push({ client, since: this.now() });
      return result;
    } catch (err) {
      await client.unbind().catch(() => undefined);
      throw err;
    }
  }

  private takeIdle(): Client | null {
    for (;;) {
      const kept = this.idle.pop();
      if (!kept) return null;
      if (this.now() - kept.since <= this.idleMs) return kept.client;
      kept.client.unbind().catch(() => undefined);
    }
  }

  private async slot(): Promise<void> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
  }
}
