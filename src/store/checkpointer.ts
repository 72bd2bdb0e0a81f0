/**
 * Checkpoints the WAL on a thread of its own, so that the event loop never waits for a disk.
 *
 * With `synchronous = NORMAL` a commit only appends to the WAL; the fsyncs happen when the WAL is
 * copied back into the database file (a checkpoint). SQLite runs that copy inside whichever commit
 * crosses `wal_autocheckpoint` pages, which in `serve` means inside the handling of a stanza: the
 * whole service then waits for two fsyncs. Here a worker thread with its own connection runs
 * PASSIVE checkpoints (they never block a writer, nor wait for one) a few times a second while the
 * WAL grows, and once a second when idle. The service's own connection keeps a much higher
 * automatic threshold (`fallbackPages`): it only matters when this thread cannot keep up, and its
 * checkpoint then finds most pages already copied and lets the WAL start again from the beginning.
 *
 * The worker is plain CommonJS evaluated from a string: it needs no loader and no build step, and
 * shares nothing with the service but the database file.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Db } from './database';

export interface CheckpointerOptions {
  /** the pause after a checkpoint that copied something (default 100 ms) */
  busyMs?: number;
  /** the pause after one that found nothing to copy (default 1 s) */
  idleMs?: number;
  /** the automatic threshold left on the service's connection (default 10,000 pages, about 40 MB) */
  fallbackPages?: number;
}

/** The worker's loop. `signal[0]` is set to 1 to stop it; `signal[1]` counts checkpoints (tests read it). */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const { file, busyMs, idleMs, signal: buffer } = workerData;
const signal = new Int32Array(buffer);
const db = new Database(file, { fileMustExist: true });
try {
  db.pragma('busy_timeout = 0');
  let last = -1;
  while (Atomics.load(signal, 0) === 0) {
    let pause = idleMs;
    try {
      const [r] = db.pragma('wal_checkpoint(PASSIVE)');
      if (r.log !== last || r.checkpointed < r.log) pause = busyMs;
      last = r.log;
      Atomics.add(signal, 1, 1);
    } catch (err) {
      parentPort.postMessage({ error: String(err && err.message || err) });
    }
    Atomics.wait(signal, 0, 0, pause);
  }
} finally {
  db.close();
}
`;

export class Checkpointer {
  readonly #worker: Worker;
  readonly #signal = new Int32Array(new SharedArrayBuffer(8));
  readonly #exited: Promise<void>;
  #failed = false;

  /** Starts checkpointing `db`'s file in the background; `db` keeps only the fallback threshold. */
  constructor(
    db: Db,
    logger: Logger,
    opts: CheckpointerOptions = {},
  ) {
    db.pragma(`wal_autocheckpoint = ${opts.fallbackPages ?? 10_000}`);
    this.#worker = new Worker(WORKER, {
      eval: true,
      // The service's own flags (a TypeScript loader, heap sizes) are not the worker's.
      execArgv: [],
      workerData: {
        driver: require.resolve('better-sqlite3'),
        file: db.name,
        busyMs: opts.busyMs ?? 100,
        idleMs: opts.idleMs ?? 1_000,
        signal: this.#signal.buffer,
      },
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
    });
    this.#worker.unref();
    this.#worker.on('message', (m: { error?: string }) => {
      if (m.error) logger.warn({ err: m.error }, 'background checkpoint failed');
    });
    this.#exited = new Promise((resolve) => {
      this.#worker.once('error', (err) => {
        // Without the thread, SQLite's own automatic checkpoints take over at their usual size.
        this.#failed = true;
        logger.error({ err }, 'the checkpoint thread stopped; checkpoints run in the service again');
        if (db.open) db.pragma('wal_autocheckpoint = 1000');
      });
      this.#worker.once('exit', () => resolve());
    });
  }

  /** How many checkpoints the thread has run. */
  get runs(): number {
    return Atomics.load(this.#signal, 1);
  }

  get failed(): boolean {
    return this.#failed;
  }

  /** Stops the thread after its current checkpoint; the database's close checkpoints the rest. */
  async stop(): Promise<void> {
    // Held by the thread until it has exited: an unreferenced worker would let the process end
    // (with status 0) while its caller still waits here.
    this.#worker.ref();
    Atomics.store(this.#signal, 0, 1);
    Atomics.notify(this.#signal, 0);
    await this.#exited;
  }
}
