/**
 * How far the controller's JavaScript heap may grow past what is live. Called once by the CLI (runner/cli.ts),
 * before any command runs.
 *
 * After each full garbage collection V8 lets the old generation grow to up to 4× what survived it before the
 * next one (its factor rises with the allocation rate). A run at hundreds of hosts allocates fast, and much of
 * it lives for a round trip to a host (a task's variables, an apply batch's held scripts and contexts), long
 * enough to be promoted and die in the old generation. Heap snapshots at 300 hosts (forks 200) found 30–60 MB
 * reachable while the heap stood at 160–200 MB: the rest was garbage waiting for a collection V8 had not
 * needed yet, and at 1000 hosts cairn's resident memory reached 401 MB (docs/performance.md, "Branch
 * sshperf"). With the factor held at 1.5 the heap stays near what is live, for a few more full collections
 * (most of their marking runs on V8's helper thread): 500 hosts × 50 tasks, 314 → 206 MB resident, CPU
 * 6.8 → 7.1 s. This is not a limit: the heap still grows as far as what is live needs.
 */
import { setFlagsFromString } from 'node:v8';

/** The heap may grow to (1 + HEAP_GROWING_PERCENT / 100) × what the last full collection left. */
export const HEAP_GROWING_PERCENT = 50;

export function limitHeapGrowth(): void {
  // Read by V8 each time it sets the next collection's limit, so setting it at run time takes effect.
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
