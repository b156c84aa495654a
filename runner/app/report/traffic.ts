/** The one line the consoles print for a `traffic` event (cairn drain / cairn canary). */
import type { RunEvent } from '../../core/engine/events.js';

export function trafficLine(event: Extract<RunEvent, { type: 'traffic' }>): string {
  const where = event.host ? ` [${event.host}]` : '';
  const data = event.data
    ? ` (${Object.entries(event.data)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')})`
    : '';
  return `${event.command.toUpperCase()}${where} ${event.phase}: ${event.msg}${data}`;
}
