// The CPU suite's interpreter rows: JavaScript workloads run by componentize-js's
// engine (StarlingMonkey: SpiderMonkey without a JIT), as `cpu-suite` runs its Rust ones.
//
// `cpu-js WORKLOAD RUNS` runs WORKLOAD once to warm up, then RUNS times, and prints
// `WORKLOAD RUNS <nanoseconds per run> <checksum>` (with RUNS 0, the warm-up only and
// 0 for the time). Workloads: `js-loop`, an integer loop (a linear congruential chain,
// 200,000 steps); `js-fib`, recursive calls (fib(20), ~22,000 calls).
import { getArguments } from 'wasi:cli/environment@0.2.10';

function jsLoop() {
  let x = 1;
  for (let i = 0; i < 200_000; i++) {
    x = (Math.imul(x, 1103515245) + i) | 0;
  }
  return x >>> 0;
}

function fib(n) {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

const WORK = {
  'js-loop': jsLoop,
  'js-fib': () => fib(20),
};

export const run = {
  run() {
    const [, workload, runsText] = getArguments();
    const work = WORK[workload];
    const runs = Number.parseInt(runsText, 10);
    if (!work || !(runs >= 0)) {
      console.error('usage: cpu-js js-loop|js-fib RUNS');
      throw new Error('bad arguments');
    }
    const checksum = work();
    if (runs === 0) {
      console.log(`${workload} 0 0 ${checksum}`);
      return;
    }
    const start = performance.now();
    for (let i = 0; i < runs; i++) {
      if (work() !== checksum) {
        throw new Error(`${workload}: a run computed something else`);
      }
    }
    const ns = Math.round(((performance.now() - start) * 1e6) / runs);
    console.log(`${workload} ${runs} ${ns} ${checksum}`);
  },
};
