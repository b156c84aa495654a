/** Gathering what `cairn report` shows: the rollout status, and the matrix and drills from the journals. */
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CairnError } from '../../core/util/errors.js';
import { renderReport, type ReportData } from './html.js';
import { localDate } from './days.js';
import { buildMatrix, journalFiles } from './matrix.js';
import { loadState } from './state.js';
import { rolloutStatus } from './status.js';
import type { Checklist } from './types.js';
import { drillsDue, readDrillRuns, type DrillSchedule } from '../drills/schedule.js';

export function buildReportData(
  checklist: Checklist,
  statePath: string,
  runsDir: string,
  today: string = localDate(),
  schedule?: DrillSchedule,
  now: Date = new Date(),
): ReportData {
  const { matrix, drills } = buildMatrix(journalFiles(runsDir));
  return {
    status: rolloutStatus(checklist, loadState(statePath), today),
    matrix,
    drillRuns: drills,
    drillSchedule: schedule && {
      file: schedule.file,
      now: now.toISOString(),
      due: drillsDue(schedule, readDrillRuns(runsDir), now),
    },
    generatedAt: now.toISOString(),
  };
}

/** Render and write the report atomically (temp file beside it, then rename); returns the HTML. */
export function writeReport(data: ReportData, output: string): string {
  const html = renderReport(data);
  const temp = `${output}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    mkdirSync(dirname(output), { recursive: true });
    writeFileSync(temp, html, { mode: 0o644 });
    renameSync(temp, output);
  } catch (err) {
    try {
      unlinkSync(temp);
    } catch {
      // not created
    }
    throw new CairnError(`cannot write the report ${output}: ${err instanceof Error ? err.message : String(err)}`, {
      kind: 'runtime',
    });
  }
  return html;
}
