/**
 * Preloaded into a service process by bench/run.ts (`node --require bench/memory-probe.cjs …`):
 * once a second it samples the resident memory and V8's heap, and keeps in BENCH_MEMORY_FILE the
 * sample taken at the highest resident memory so far, so the report can say what the peak is made
 * of. It allocates next to nothing and never keeps the process alive.
 */
'use strict';
const { writeFileSync } = require('node:fs');
const v8 = require('node:v8');

const { isMainThread } = require('node:worker_threads');

const file = process.env.BENCH_MEMORY_FILE;
// Preloads run in worker threads too (tsx's loader hooks run in one): sample from the main one.
if (file && isMainThread) {
  const mb = (bytes) => Math.round((bytes / 1048576) * 10) / 10;
  let peak = 0;
  const sample = () => {
    const m = process.memoryUsage();
    if (m.rss <= peak) return;
    peak = m.rss;
    const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, mb(s.space_size)]));
    writeFileSync(
      file,
      JSON.stringify({
        rssMb: mb(m.rss),
        heapTotalMb: mb(m.heapTotal),
        heapUsedMb: mb(m.heapUsed),
        youngMb: spaces.new_space ?? 0,
        externalMb: mb(m.external),
      }),
    );
  };
  setInterval(sample, 1000).unref();
}
