/**
 * Keys remembered for a while, at most `maxEntries` of them (the oldest go first): verified
 * user+password pairs, recent wrong passwords. Keys come from the network, so the set is bounded.
 */
export class ExpiringSet {
  private readonly until = new Map<string, number>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  has(key: string): boolean {
    const expiresAt = this.until.get(key);
    if (expiresAt === undefined) return false;
    if (expiresAt > Date.now()) return true;
    this.until.delete(key);
    return false;
  }

  add(key: string): void {
    if (this.until.size >= this.maxEntries) {
      const oldest = this.until.keys().next().value;
      if (oldest !== undefined) this.until.delete(oldest);
    }
    this.until.set(key, Date.now() + this.ttlMs);
  }

  clear(): void {
    this.until.clear();
  }
}
