/**
 * Machine-readable output (`--json`): one JSON object per line per event, masked, and nothing else on that
 * stream, so `cairn ... --json | jq` always parses.
 */
import type { Writable } from 'node:stream';
import type { EventBus } from '../../core/engine/events.js';
import type { SecretMasker } from './mask.js';

export interface JsonReporterOptions {
  stream: Writable;
  masker: SecretMasker;
}

/** Subscribe; returns the function that unsubscribes. */
export function attachJsonReporter(bus: EventBus, opts: JsonReporterOptions): () => void {
  return bus.subscribe((event) => {
    opts.stream.write(`${JSON.stringify(opts.masker.maskValue(event))}\n`);
  });
}
