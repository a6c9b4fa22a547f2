// bench/bullmq_bench.js - BullMQ doing the same end-to-end work as bench_redis_backend.c:
// `concurrency` producer loops enqueue (one job at a time with queue.add, or 100 at a time with
// queue.addBulk), one Worker with the same concurrency takes and completes them (the processor
// returns a small result, which BullMQ stores), until `tasks` jobs have completed.
//
// Usage: node bench/bullmq_bench.js --port P --tasks N --concurrency C --mode single|batch
// bullmq and ioredis are resolved from NODE_PATH (bench_redis_backend.c installs them into
// build/bench-node). Prints one JSON line: {"tasks_per_s":..,"seconds":..,"bullmq":"x.y.z"}.
'use strict';

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const port = Number(arg('port', '6379'));
const tasks = Number(arg('tasks', '5000'));
const concurrency = Number(arg('concurrency', '1'));
const mode = arg('mode', 'single');
const batch = 100;

let bullmq, version;
try {
  bullmq = require('bullmq');
  version = require('bullmq/package.json').version;
} catch (e) {
  console.log(JSON.stringify({ error: 'cannot load bullmq: ' + e.message }));
  process.exit(2);
}
const { Queue, Worker } = bullmq;
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };

async function main() {
  const name = `bench-${mode}-${concurrency}-${process.pid}`;
  const queue = new Queue(name, { connection });
  await queue.waitUntilReady();
  let done = 0;
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  const started = process.hrtime.bigint();
  const worker = new Worker(name, async () => 'done', { connection, concurrency });
  worker.on('completed', () => {
    done += 1;
    if (done === tasks) finish();
  });
  worker.on('error', (e) => console.error('worker error', e.message));

  // Producers: `concurrency` loops sharing one counter of jobs still to add.
  let next = 0;
  async function produce() {
    for (;;) {
      if (mode === 'batch') {
        const first = next;
        if (first >= tasks) return;
        const n = Math.min(batch, tasks - first);
        next += n;
        const jobs = [];
        for (let i = 0; i < n; i += 1) jobs.push({ name: 't', data: { n: first + i } });
        await queue.addBulk(jobs);
      } else {
        const n = next;
        if (n >= tasks) return;
        next += 1;
        await queue.add('t', { n });
      }
    }
  }
  const producers = [];
  for (let i = 0; i < concurrency; i += 1) producers.push(produce());
  await Promise.all(producers);
  await finished;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  console.log(JSON.stringify({ tasks_per_s: tasks / seconds, seconds, bullmq: version }));
}

main().then(() => process.exit(0), (e) => {
  console.log(JSON.stringify({ error: String(e && e.message ? e.message : e) }));
  process.exit(1);
});
