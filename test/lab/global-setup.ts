/**
 * After all lab test files: take the lab down when CAIRN_LAB_TEARDOWN=1 (npm test and CI set it), so a
 * test run leaves no containers behind. Developers running one lab file keep the lab up between runs.
 */
import { labDown } from '../../runner/features/lab/index.js';

export default function setup(): () => Promise<void> {
  return async () => {
    if (process.env.CAIRN_LAB_TEARDOWN !== '1') return;
    if (typeof process.getuid === 'function' && process.getuid() !== 0) return;
    try {
      await labDown({ log: () => {} });
    } catch (err) {
      console.warn(`lab down after the tests failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
}
