/**
 * The probe loop every availability drill measures with: HTTP GETs from the jump host against a URL (the
 * VIP) at a fixed interval, bounded in count and time, each with its own timeout. It reports every sample,
 * the failures, and the outages (runs of consecutive failures) with their length.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface ProbeSample {
  /** Milliseconds since the loop started. */
  atMs: number;
  ok: boolean;
  status?: number;
  latencyMs: number;
  /** The body's first line (e.g. which backend answered). */
  body?: string;
  error?: string;
}

export interface ProbeReport {
  samples: ProbeSample[];
  sent: number;
  failed: number;
  /** Runs of consecutive failures: from the first failed request to the next success. */
  outages: Array<{ startMs: number; endMs: number; durationMs: number; requests: number }>;
  longestOutageMs: number;
  /** Availability over the loop, in percent. */
  availabilityPct: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

export interface ProbeOptions {
  url: string;
  intervalMs?: number;
  timeoutMs?: number;
  /** Hard bounds: the loop never sends more than maxRequests nor runs longer than maxDurationMs. */
  maxRequests: number;
  maxDurationMs: number;
  signal?: AbortSignal;
  /** For an https URL: the CA certificate(s) (PEM) the chain must lead to; the system's store otherwise. */
  ca?: string;
}

function getOnce(url: string, timeoutMs: number, ca?: string): Promise<Omit<ProbeSample, 'atMs'>> {
  const started = performance.now();
  // Every request is a new connection (and, over https, a full handshake checked against `ca`): a reload
  // that refused connections or served a bad certificate shows as a failed sample.
  const tls = url.startsWith('https:');
  const request = tls ? httpsRequest : httpRequest;
  return new Promise((resolveGet) => {
    const req = request(
      url,
      {
        method: 'GET',
        timeout: timeoutMs,
        agent: false,
        headers: { connection: 'close', 'user-agent': 'cairn-probe' },
        ...(tls && ca !== undefined ? { ca } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < 512) body += chunk;
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          resolveGet({
            ok: status >= 200 && status < 400,
            status,
            latencyMs: performance.now() - started,
            body: body.split('\n')[0]?.slice(0, 200),
          });
        });
        res.on('error', (err) => resolveGet({ ok: false, latencyMs: performance.now() - started, error: err.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolveGet({ ok: false, latencyMs: performance.now() - started, error: err.message }));
    req.end();
  });
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function summarise(samples: ProbeSample[]): ProbeReport {
  const outages: ProbeReport['outages'] = [];
  let current: { startMs: number; requests: number } | undefined;
  for (const s of samples) {
    if (!s.ok) {
      if (!current) current = { startMs: s.atMs, requests: 0 };
      current.requests++;
    } else if (current) {
      outages.push({
        startMs: current.startMs,
        endMs: s.atMs,
        durationMs: s.atMs - current.startMs,
        requests: current.requests,
      });
      current = undefined;
    }
  }
  if (current) {
    const end = samples[samples.length - 1]!.atMs;
    outages.push({
      startMs: current.startMs,
      endMs: end,
      durationMs: end - current.startMs,
      requests: current.requests,
    });
  }
  const failed = samples.filter((s) => !s.ok).length;
  const latencies = samples
    .filter((s) => s.ok)
    .map((s) => s.latencyMs)
    .sort((a, b) => a - b);
  return {
    samples,
    sent: samples.length,
    failed,
    outages,
    longestOutageMs: Math.max(0, ...outages.map((o) => o.durationMs)),
    availabilityPct: samples.length ? ((samples.length - failed) / samples.length) * 100 : 0,
    latencyP50Ms: percentile(latencies, 50),
    latencyP99Ms: percentile(latencies, 99),
  };
}

/** A running probe loop; `stop()` ends it and resolves the report. */
export class ProbeLoop {
  private readonly samples: ProbeSample[] = [];
  private stopped = false;
  private readonly done: Promise<ProbeReport>;

  constructor(private readonly opts: ProbeOptions) {
    this.done = this.loop();
  }

  private async loop(): Promise<ProbeReport> {
    const interval = this.opts.intervalMs ?? 100;
    const timeout = this.opts.timeoutMs ?? 1000;
    const t0 = performance.now();
    while (
      !this.stopped &&
      !this.opts.signal?.aborted &&
      this.samples.length < this.opts.maxRequests &&
      performance.now() - t0 < this.opts.maxDurationMs
    ) {
      const at = performance.now() - t0;
      const sample = await getOnce(this.opts.url, timeout, this.opts.ca);
      this.samples.push({ atMs: Math.round(at), ...sample, latencyMs: Math.round(sample.latencyMs * 10) / 10 });
      const next = t0 + at + interval - performance.now();
      if (next > 0) await new Promise((r) => setTimeout(r, next));
    }
    return summarise(this.samples);
  }

  /** Samples so far (for "wait until the service answers again"). */
  get count(): number {
    return this.samples.length;
  }

  lastOk(n: number): boolean {
    const tail = this.samples.slice(-n);
    return tail.length === n && tail.every((s) => s.ok);
  }

  async stop(): Promise<ProbeReport> {
    this.stopped = true;
    return this.done;
  }
}
