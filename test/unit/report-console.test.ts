import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { EventBus, type RunEvent, type TaskRef, type TaskStatus } from '../../runner/core/engine/events.js';
import {
  attachConsoleReporter,
  compactJson,
  formatDuration,
  useFancyOutput,
  type ConsoleReporterOptions,
} from '../../runner/app/report/console.js';
import { SecretMasker } from '../../runner/app/report/mask.js';

const T = '2026-11-21T12:00:00.000Z';
const ESC = '\u001b';

type TaskResult = Extract<RunEvent, { type: 'task_result' }>;

const facts: TaskRef = { name: 'Gathering Facts', role: '', module: 'setup', location: 'site.yaml:1:3' };
const install: TaskRef = {
  name: 'install nginx',
  role: 'nginx',
  module: 'package',
  location: 'roles/nginx/tasks/main.yaml:1:3',
};
const config: TaskRef = {
  name: 'write config',
  role: 'nginx',
  module: 'template',
  location: 'roles/nginx/tasks/main.yaml:6:3',
};
const users: TaskRef = { name: 'add users', role: 'base', module: 'user', location: 'roles/base/tasks/main.yaml:2:3' };
const probe: TaskRef = { name: 'probe', role: '', module: 'command', location: 'site.yaml:9:7' };
const restart: TaskRef = {
  name: 'restart nginx',
  role: 'nginx',
  module: 'service',
  location: 'roles/nginx/handlers/main.yaml:1:3',
};

function start(host: string, task: TaskRef, extra: Partial<Extract<RunEvent, { type: 'task_start' }>> = {}): RunEvent {
  return { type: 'task_start', time: T, host, task, ...extra };
}
function result(host: string, task: TaskRef, status: TaskStatus, extra: Partial<TaskResult> = {}): RunEvent {
  return { type: 'task_result', time: T, host, task, status, durationMs: 1234, ...extra };
}

/** Run events through a console reporter writing to an in-memory stream; return what it wrote. */
function render(events: RunEvent[], opts: Partial<ConsoleReporterOptions> = {}): string {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  const bus = new EventBus();
  const detach = attachConsoleReporter(bus, {
    verbosity: 0,
    diff: false,
    color: false,
    tty: false,
    masker: new SecretMasker(),
    stream,
    env: {},
    ...opts,
  });
  for (const event of events) bus.emit(event);
  detach();
  return Buffer.concat(chunks).toString('utf8');
}

/** An Ansible banner: the title, a space, stars up to 80 columns. */
function banner(title: string): string {
  return `${title} ${'*'.repeat(79 - title.length)}`;
}

const stats = (ok: number, changed: number, unreachable: number, failed: number, skipped: number, ignored = 0) => ({
  ok,
  changed,
  unreachable,
  failed,
  skipped,
  rescued: 0,
  ignored,
});

/** A whole run on two hosts: facts, a change, a loop, a failure, an ignored failure, a handler, verify, recap. */
const run: RunEvent[] = [
  {
    type: 'run_start',
    time: T,
    runId: '2026-11-21T12-00-00-000Z',
    command: 'apply',
    check: false,
    diff: false,
    inventory: 'inventory.yaml',
    playbook: 'site.yaml',
  },
  { type: 'play_start', time: T, play: 'web tier', hosts: ['web1', 'lb1'], check: false },
  start('web1', facts),
  start('lb1', facts),
  result('web1', facts, 'ok'),
  result('lb1', facts, 'ok'),
  start('web1', install),
  start('lb1', install),
  result('web1', install, 'changed', { actions: ['install nginx 1.22'] }),
  result('lb1', install, 'skipped', { msg: 'when: "web" in group_names' }),
  { type: 'handler_notified', time: T, host: 'web1', handler: 'restart nginx', by: 'install nginx' },
  start('web1', users),
  result('web1', users, 'ok', { item: 'alice' }),
  result('web1', users, 'changed', { item: { name: 'bob', uid: 1001 } }),
  result('web1', users, 'skipped', { item: 'carol' }),
  result('web1', users, 'changed', { loopSummary: true }),
  start('lb1', config),
  result('lb1', config, 'failed', { msg: 'template error: undefined variable "port"' }),
  { type: 'host_failed', time: T, host: 'lb1', msg: 'template error: undefined variable "port"' },
  start('web1', probe),
  result('web1', probe, 'failed', { msg: 'non-zero return code 3', ignored: true }),
  { type: 'warning', time: T, msg: 'play "web tier": 1 of 2 hosts failed' },
  start('web1', restart, { handler: true }),
  result('web1', restart, 'changed', { handler: true }),
  { type: 'verify_start', time: T, play: 'web tier', hosts: ['web1'] },
  start(
    'web1',
    { name: 'port 80 answers', role: 'nginx', module: 'wait_for', location: 'roles/nginx/verify/main.yaml:1:3' },
    { verify: true },
  ),
  result(
    'web1',
    { name: 'port 80 answers', role: 'nginx', module: 'wait_for', location: 'roles/nginx/verify/main.yaml:1:3' },
    'ok',
    { verify: true },
  ),
  { type: 'verify_result', time: T, host: 'web1', role: 'nginx', check: 'port 80 answers', passed: true },
  { type: 'verify_result', time: T, host: 'web1', role: 'nginx', check: 'index page', passed: false, msg: 'HTTP 502' },
  { type: 'play_end', time: T, play: 'web tier' },
  { type: 'recap', time: T, stats: { web1: stats(5, 3, 0, 0, 0, 1), lb1: stats(1, 0, 0, 1, 1) } },
  { type: 'run_end', time: T, exitCode: 2, durationMs: 83_400, interrupted: false },
];

describe('console reporter, plain', () => {
  it('prints a run like ansible-playbook, host on every line', () => {
    expect(render(run)).toBe(
      [
        '',
        banner('PLAY [web tier]'),
        '',
        banner('TASK [Gathering Facts]'),
        'ok: [web1]',
        'ok: [lb1]',
        '',
        banner('TASK [nginx : install nginx]'),
        'changed: [web1]',
        'skipping: [lb1]',
        '',
        banner('TASK [base : add users]'),
        'ok: [web1] => (item=alice)',
        'changed: [web1] => (item={"name": "bob", "uid": 1001})',
        'skipping: [web1] => (item=carol)',
        '',
        banner('TASK [nginx : write config]'),
        'fatal: [lb1]: FAILED! => template error: undefined variable "port"',
        '',
        banner('TASK [probe]'),
        'fatal: [web1]: FAILED! => non-zero return code 3',
        '...ignoring',
        '[WARNING]: play "web tier": 1 of 2 hosts failed',
        '',
        banner('RUNNING HANDLER [nginx : restart nginx]'),
        'changed: [web1]',
        '',
        banner('VERIFY [nginx]'),
        'passed: [web1] port 80 answers',
        'FAILED: [web1] index page => HTTP 502',
        '',
        banner('PLAY RECAP'),
        'lb1                        : ok=1    changed=0    unreachable=0    failed=1    skipped=1    rescued=0    ignored=0',
        'web1                       : ok=5    changed=3    unreachable=0    failed=0    skipped=0    rescued=0    ignored=1',
        '',
        'Finished in 1m 23.4s, exit code 2',
        '',
      ].join('\n'),
    );
  });

  it('prints a task banner with its first result and again when interleaved hosts (free strategy) switch tasks', () => {
    const text = render([
      start('web1', install),
      start('lb1', config),
      result('lb1', config, 'ok'),
      result('web1', install, 'changed'),
      result('lb1', install, 'ok'),
    ]);
    expect(text).toBe(
      [
        '',
        banner('TASK [nginx : write config]'),
        'ok: [lb1]',
        '',
        banner('TASK [nginx : install nginx]'),
        'changed: [web1]',
        'ok: [lb1]',
        '',
      ].join('\n'),
    );
  });

  it('prints the banner of every play, even two plays of the same name', () => {
    const play: RunEvent = { type: 'play_start', time: T, play: 'deploy', hosts: ['web1'], check: false };
    const text = render([
      play,
      result('web1', probe, 'ok'),
      { type: 'play_end', time: T, play: 'deploy' },
      play,
      result('web1', probe, 'ok'),
    ]);
    expect(text).toBe(
      [
        '',
        banner('PLAY [deploy]'),
        '',
        banner('TASK [probe]'),
        'ok: [web1]',
        '',
        banner('PLAY [deploy]'),
        '',
        banner('TASK [probe]'),
        'ok: [web1]',
        '',
      ].join('\n'),
    );
  });

  it('prints unreachable hosts once, failed loop items and the loop failure', () => {
    const text = render([
      start('db1', install),
      result('db1', install, 'unreachable', { msg: 'ssh: connect to host 127.0.0.9 port 22: Connection refused' }),
      {
        type: 'host_unreachable',
        time: T,
        host: 'db1',
        msg: 'ssh: connect to host 127.0.0.9 port 22: Connection refused',
      },
      { type: 'host_unreachable', time: T, host: 'db2', msg: 'host key mismatch' },
      start('web1', users),
      result('web1', users, 'failed', { item: 'bob', msg: 'useradd: group missing' }),
      result('web1', users, 'failed', { loopSummary: true, msg: 'one or more items failed' }),
      { type: 'host_failed', time: T, host: 'web1', msg: 'one or more items failed' },
    ]);
    expect(text).toBe(
      [
        '',
        banner('TASK [nginx : install nginx]'),
        'fatal: [db1]: UNREACHABLE! => ssh: connect to host 127.0.0.9 port 22: Connection refused',
        'fatal: [db2]: UNREACHABLE! => host key mismatch',
        '',
        banner('TASK [base : add users]'),
        'failed: [web1] (item=bob) => useradd: group missing',
        'fatal: [web1]: FAILED! => one or more items failed',
        '',
      ].join('\n'),
    );
  });

  it('prints a host-level failure only when no task result already said so (no_log messages stay censored)', () => {
    const text = render([
      start('web1', probe),
      result('web1', probe, 'failed', {
        msg: 'the output has been hidden due to the fact that no_log: true was specified for this result',
      }),
      { type: 'host_failed', time: T, host: 'web1', msg: 'uncensored detail' },
      { type: 'host_failed', time: T, host: 'web2', msg: 'stopped: any_errors_fatal' },
    ]);
    expect(text).toBe(
      [
        '',
        banner('TASK [probe]'),
        'fatal: [web1]: FAILED! => the output has been hidden due to the fact that no_log: true was specified for this result',
        'fatal: [web2]: FAILED! => stopped: any_errors_fatal',
        '',
      ].join('\n'),
    );
  });

  it('marks check mode on banners and lists the planned actions of a change', () => {
    const text = render([
      { type: 'play_start', time: T, play: 'p', hosts: ['web1'], check: true },
      start('web1', install),
      result('web1', install, 'changed', { check: true, actions: ['install nginx 1.22', 'enable nginx'] }),
      result('lb1', install, 'ok', { check: true }),
    ]);
    expect(text).toBe(
      [
        '',
        banner('PLAY [p] [CHECK MODE]'),
        '',
        banner('TASK [nginx : install nginx] [CHECK MODE]'),
        'changed: [web1]',
        '    - install nginx 1.22',
        '    - enable nginx',
        'ok: [lb1]',
        '',
      ].join('\n'),
    );
  });

  it('prints diffs under the result with --diff, and hides diffs holding a secret', () => {
    const masker = new SecretMasker();
    masker.add('Zq9-secret');
    const events = [
      start('web1', config),
      result('web1', config, 'changed', {
        diffs: [
          { path: '/etc/nginx/nginx.conf', before: 'worker_processes 1;\n', after: 'worker_processes 4;\n' },
          {
            path: '/etc/nginx/htpasswd',
            before: '',
            after: 'admin:Zq9-secret\n',
            beforeMissing: true,
            attributes: ['mode 0640'],
          },
        ],
      }),
    ];
    expect(render(events, { masker })).toBe(
      ['', banner('TASK [nginx : write config]'), 'changed: [web1]', ''].join('\n'),
    );
    expect(render(events, { masker, diff: true })).toBe(
      [
        '',
        banner('TASK [nginx : write config]'),
        'changed: [web1]',
        '--- before: /etc/nginx/nginx.conf',
        '+++ after: /etc/nginx/nginx.conf',
        '@@ -1,1 +1,1 @@',
        '-worker_processes 1;',
        '+worker_processes 4;',
        '/etc/nginx/htpasswd: content changed (contains secret values; diff hidden)',
        '/etc/nginx/htpasswd: mode 0640',
        '',
      ].join('\n'),
    );
  });

  it('-v shows the registered result as YAML, -vv task paths and notifications, -vvv per-host detail', () => {
    const events: RunEvent[] = [
      start('web1', probe),
      result('web1', probe, 'ok', { result: { rc: 0, stdout: 'line one\nline two', changed: false }, attempts: 2 }),
      { type: 'handler_notified', time: T, host: 'web1', handler: 'restart nginx', by: 'probe' },
    ];
    const v1 = [
      '',
      banner('TASK [probe]'),
      'ok: [web1]',
      '    rc: 0',
      '    stdout: |-',
      '      line one',
      '      line two',
      '    changed: false',
      '',
    ];
    expect(render(events, { verbosity: 1 })).toBe(v1.join('\n'));
    const v2 = [
      ...v1.slice(0, 2),
      'task path: site.yaml:9:7',
      ...v1.slice(2, -1),
      'NOTIFIED HANDLER restart nginx for web1 (by probe)',
      '',
    ];
    expect(render(events, { verbosity: 2 })).toBe(v2.join('\n'));
    expect(render(events, { verbosity: 3 })).toBe(
      [
        '',
        banner('TASK [probe]'),
        'task path: site.yaml:9:7',
        '<web1> running module command',
        'ok: [web1]',
        '    rc: 0',
        '    stdout: |-',
        '      line one',
        '      line two',
        '    changed: false',
        '<web1> done in 1.23s, 2 attempts',
        'NOTIFIED HANDLER restart nginx for web1 (by probe)',
        '',
      ].join('\n'),
    );
  });

  it("-vvv shows each host's one connection as it opens, with its route and handshake time", () => {
    const events: RunEvent[] = [
      {
        type: 'connection_open',
        time: T,
        host: 'web1',
        transport: 'ssh',
        user: 'root',
        address: '10.77.0.21',
        port: 22,
        via: [],
        ms: 123,
      },
      {
        type: 'connection_open',
        time: T,
        host: 'db1',
        transport: 'ssh',
        user: 'ops',
        address: '10.0.0.5',
        port: 2222,
        via: ['jump@10.0.0.1:22'],
        ms: 2051,
      },
      {
        type: 'connection_open',
        time: T,
        host: 'localhost',
        transport: 'local',
        user: 'root',
        address: '127.0.0.1',
        port: 0,
        via: [],
        ms: 0,
      },
    ];
    expect(render(events, { verbosity: 2 })).toBe('');
    expect(render(events, { verbosity: 3 }).split('\n')).toEqual([
      '<web1> ESTABLISH SSH CONNECTION FOR USER: root to 10.77.0.21:22, host key checked (0.12 s)',
      '<db1> ESTABLISH SSH CONNECTION FOR USER: ops to 10.0.0.5:2222 via jump@10.0.0.1:22, host key checked (2.05 s)',
      '<localhost> ESTABLISH LOCAL CONNECTION (0.00 s)',
      '',
    ]);
  });

  it('shows a debug message at default verbosity, as Ansible does (and nothing else of other ok results)', () => {
    const note: TaskRef = { name: 'NOTE', role: 'zfs', module: 'debug', location: 'roles/zfs/tasks.yaml:9:3' };
    const text = render([
      start('pve1', note),
      result('pve1', note, 'ok', {
        result: { msg: 'compression=lz4 is not supported; using lzjb', changed: false, failed: false },
      }),
      start('pve1', probe),
      result('pve1', probe, 'ok', { result: { rc: 0, stdout: 'quiet', changed: false } }),
    ]);
    expect(text).toBe(
      [
        '',
        banner('TASK [zfs : NOTE]'),
        'ok: [pve1]',
        '    msg: compression=lz4 is not supported; using lzjb',
        '',
        banner('TASK [probe]'),
        'ok: [pve1]',
        '',
      ].join('\n'),
    );
  });

  it('prints drill results with measured values against the target', () => {
    const text = render([
      {
        type: 'drill_result',
        time: T,
        drill: 'lb failover',
        passed: true,
        measured: { failover_s: 2.4, dropped: 0 },
        target: 'failover_s < 5',
      },
      {
        type: 'drill_result',
        time: T,
        drill: 'db failover',
        passed: false,
        measured: { failover_s: 31 },
        target: 'failover_s < 30',
        msg: 'replica promoted late',
      },
    ]);
    expect(text).toBe(
      [
        '',
        banner('DRILL [lb failover]'),
        'PASS: failover_s=2.4 dropped=0 (target: failover_s < 5)',
        '',
        banner('DRILL [db failover]'),
        'FAIL: failover_s=31 (target: failover_s < 30) => replica promoted late',
        '',
      ].join('\n'),
    );
  });

  it('widens the recap host column for long names and prints interruption', () => {
    const long = 'a-very-long-host-name.example.internal';
    const text = render([
      { type: 'recap', time: T, stats: { [long]: stats(1, 0, 0, 0, 0), b: stats(0, 0, 1, 0, 0) } },
      { type: 'run_end', time: T, exitCode: 99, durationMs: 850, interrupted: true },
    ]);
    expect(text).toBe(
      [
        '',
        banner('PLAY RECAP'),
        `${long} : ok=1    changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0`,
        `${'b'.padEnd(long.length)} : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0`,
        '',
        'Interrupted after 0.85s, exit code 99',
        '',
      ].join('\n'),
    );
  });

  it('indents continuation lines of a multi-line message', () => {
    const text = render([result('web1', probe, 'failed', { msg: 'command failed\nstderr: no such file' })]);
    expect(text).toBe(
      ['', banner('TASK [probe]'), 'fatal: [web1]: FAILED! => command failed', '    stderr: no such file', ''].join(
        '\n',
      ),
    );
  });

  it('writes no escape code when not a TTY, with --no-color, or with NO_COLOR, even on a TTY', () => {
    for (const opts of [
      { tty: false, color: true, env: {} },
      { tty: true, color: false, env: {} },
      { tty: true, color: true, env: { NO_COLOR: '1' } },
    ]) {
      const text = render(run, opts);
      expect(text).not.toContain(ESC);
      expect(text).toBe(render(run));
    }
  });
});

describe('console reporter, colour', () => {
  it('colours statuses as Ansible does when on a colour TTY', () => {
    const text = render(
      [
        result('web1', install, 'ok'),
        result('web2', install, 'changed'),
        result('web3', install, 'skipped'),
        result('web4', install, 'failed', { msg: 'x' }),
        { type: 'recap', time: T, stats: { web4: stats(0, 0, 0, 1, 0) } },
      ],
      { tty: true, color: true, env: {}, columns: 80 },
    );
    expect(text).toContain(`${ESC}[32mok: [web1]${ESC}[39m`);
    expect(text).toContain(`${ESC}[33mchanged: [web2]${ESC}[39m`);
    expect(text).toContain(`${ESC}[36mskipping: [web3]${ESC}[39m`);
    expect(text).toContain(`${ESC}[31mfatal: [web4]: FAILED! => x${ESC}[39m`);
    // Recap: the host red because it failed; non-zero counts coloured, zeros plain.
    expect(text).toContain(
      `${ESC}[31mweb4                      ${ESC}[39m : ok=0    changed=0    unreachable=0    ${ESC}[31mfailed=1   ${ESC}[39m skipped=0`,
    );
  });

  it('falls back to a plain, masked line when a secret straddles two coloured pieces', () => {
    const masker = new SecretMasker();
    // The recap prints "<host> : ok=..." in separately coloured pieces; this secret spans them.
    masker.add('web4                       : ok=0');
    const text = render([{ type: 'recap', time: T, stats: { web4: stats(0, 0, 0, 1, 0) } }], {
      tty: true,
      color: true,
      env: {},
      columns: 80,
      masker,
    });
    expect(text).not.toContain('web4                       : ok=0');
    expect(text).toContain('******** ');
  });
});

describe('console helpers', () => {
  it('decides on colours from TTY, --no-color and NO_COLOR', () => {
    expect(useFancyOutput({ tty: true, color: true }, {})).toBe(true);
    expect(useFancyOutput({ tty: true, color: true }, { NO_COLOR: '' })).toBe(true);
    expect(useFancyOutput({ tty: true, color: true }, { NO_COLOR: 'yes' })).toBe(false);
    expect(useFancyOutput({ tty: false, color: true }, {})).toBe(false);
    expect(useFancyOutput({ tty: true, color: false }, {})).toBe(false);
  });

  it('formats durations and compact JSON', () => {
    expect(formatDuration(850)).toBe('0.85s');
    expect(formatDuration(12_345)).toBe('12.3s');
    expect(formatDuration(65_000)).toBe('1m 05.0s');
    expect(formatDuration(7_384_000)).toBe('2h 03m 04s');
    expect(compactJson({ a: [1, 'x'], b: null })).toBe('{"a": [1, "x"], "b": null}');
  });
});
