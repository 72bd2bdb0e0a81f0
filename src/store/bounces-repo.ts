/** The bounces table and the outbox rows bounces are about, behind the domain's BounceStore port. */
import type { BounceStore } from '../domain/bounces';
import { immediateTransaction, type Db } from './database';

export class SqliteBounceStore implements BounceStore {
  readonly #row;
  readonly #permanent;
  readonly #add;
  #tx: (<T>(fn: () => T) => T) | undefined;

  constructor(private readonly db: Db) {
    this.#row = db.prepare<[number], { channel: string; recipient: string; invite_ids: string }>('SELECT channel, recipient, invite_ids FROM outbox WHERE id = ?');
    this.#permanent = db.prepare<[number], { n: number }>('SELECT count(*) AS n FROM bounces WHERE outbox_id = ? AND permanent = 1');
    this.#add = db.prepare<{ outboxId: number; permanent: number; status: string; diagnostic: string | null; via: string; at: number }, { id: number }>(
      'INSERT INTO bounces (outbox_id, permanent, status, diagnostic, via, at) VALUES (@outboxId, @permanent, @status, @diagnostic, @via, @at) RETURNING id',
    );
  }

  transaction<T>(fn: () => T): T {
    return (this.#tx ??= immediateTransaction(this.db))(fn);
  }

  outboxRow(id: number): { channel: string; recipient: string; inviteIds: string[] } | undefined {
    const row = this.#row.get(id);
    return row ? { channel: row.channel, recipient: row.recipient, inviteIds: JSON.parse(row.invite_ids) as string[] } : undefined;
  }

  hasPermanentBounce(outboxId: number): boolean {
    return Number(this.#permanent.get(outboxId)!.n) > 0;
  }

  addBounce(entry: { outboxId: number; permanent: boolean; status: string; diagnostic: string | null; via: string; at: number }): number {
    return Number(this.#add.get({ ...entry, permanent: entry.permanent ? 1 : 0 })!.id);
  }
}
