/** The reporters: they subscribe to the engine's EventBus; the engine never imports them. */
export { SecretMasker, MASK, secretForms } from './mask.js';
export {
  renderFileDiff,
  renderFileDiffColored,
  fileDiffLines,
  colorDiffStyle,
  contentChanged,
  secretHiddenNote,
  type DiffStyle,
} from './diff.js';
export {
  attachConsoleReporter,
  ConsoleReporter,
  useFancyOutput,
  itemLabel,
  compactJson,
  formatDuration,
  preloadSpinner,
  type ConsoleReporterOptions,
} from './console.js';
export { attachJsonReporter, type JsonReporterOptions } from './json.js';
export { RunJournal, runIdFor, readJournal, latestRun, hostsToRerun, DEFAULT_JOURNAL_DIR } from './journal.js';
export { RecapCollector, taskKey, type ExitCodeOptions } from './recap.js';
