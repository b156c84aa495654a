/**
 * The ha_cluster role's CIB drift probe (roles/ha_cluster/files/cairn-crm-drift) and its variable schema, at the
 * level that runs here: the cluster itself needs the lab (test/lab/65-ha-guests), but pacemaker's CIB tools and
 * crmsh work on a CIB file (CIB_file) with no cluster running. The role's real template is rendered with the lab's
 * values, loaded the way the role loads it, then changed by hand with crm_resource, cibadmin and crm_attribute, as
 * an operator would on a node; the probe must name each changed object, ignore what cairn does not own, and find
 * nothing once the role's load has run again.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Ajv } from 'ajv';
import { repoRoot } from '../helpers/cli.js';
import { builtinRolesDir, sharedTemplatesDir } from '../../runner/core/util/paths.js';
import { createTemplater } from '../../runner/core/template/index.js';
import { lazyVars } from '../../runner/core/engine/lazy-vars.js';
import { layerVars, type Vars } from '../../runner/core/util/vars.js';

const ROLE = join(builtinRolesDir(), 'ha_cluster');
const PROBE = join(ROLE, 'files', 'cairn-crm-drift');
for (const [tool, pkg] of [
  ['/usr/sbin/crm', 'crmsh'],
  ['/usr/sbin/cibadmin', 'pacemaker-cli-utils'],
  ['/usr/sbin/crm_diff', 'pacemaker-cli-utils'],
] as const) {
  if (!existsSync(tool))
    throw new Error(`${tool} is not installed: apt-get install -y ${pkg} (scripts/test-prereqs.sh does it)`);
}

const work = mkdtempSync(join(tmpdir(), 'cairn-cib-drift-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const cib = join(work, 'cib.xml');
const crmFile = join(work, 'cluster.crm');

function yamlFile(path: string): Vars {
  return parse(readFileSync(path, 'utf8')) as Vars;
}

/** The role's defaults under the lab's pve values (inventories/lab/group_vars/pve/ha.yaml), as the play sees them. */
function labRoleVars(): Vars {
  return layerVars(
    yamlFile(join(ROLE, 'defaults.yaml')),
    yamlFile(join(repoRoot, 'inventories/lab/group_vars/pve/ha.yaml')),
  );
}

/** Run a tool on the CIB file (CIB_file: pacemaker's tools and crmsh read and write it instead of a cluster). */
function onCib(command: string, args: string[]) {
  const r = spawnSync(command, args, {
    encoding: 'utf8',
    env: { ...process.env, CIB_file: cib, TERM: 'dumb' },
    timeout: 120_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function probe(): string[] {
  const r = onCib(PROBE, [crmFile]);
  expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

/** The role's load. Forced here only because this machine has no fence_cairn_lab to give crmsh its metadata. */
function roleLoad(): void {
  const r = onCib('crm', ['-F', 'configure', 'load', 'update', crmFile]);
  expect(r.code, r.stderr).toBe(0);
}

describe("ha_cluster: a hand edit of cairn's objects in the live CIB is drift", () => {
  beforeEach(() => {
    const vars = labRoleVars();
    vars.ha_cluster_nodes = ['pve1', 'pve2', 'pve3'];
    vars.ha_fence_lab_url = 'http://10.77.0.1:7410/fence';
    const templater = createTemplater({ partialsDirs: [sharedTemplatesDir()] });
    const view = lazyVars(vars, (t, context) => templater.renderValue(t, context, { file: 'ha.yaml' }));
    writeFileSync(crmFile, templater.renderFile(join(ROLE, 'templates', 'cluster.crm.hbs'), view));
    const empty = spawnSync('cibadmin', ['--empty'], { encoding: 'utf8' });
    expect(empty.status, empty.stderr).toBe(0);
    writeFileSync(cib, empty.stdout);
    roleLoad();
  });

  it('finds nothing right after the load, nor for what pacemaker or crm resource move add', () => {
    expect(readFileSync(crmFile, 'utf8')).toContain('primitive guest-ha1 ocf:heartbeat:VirtualDomain');
    expect(probe()).toEqual([]);
    // pacemaker's own properties and a constraint `crm resource move` leaves are not cairn's objects.
    expect(onCib('crm_attribute', ['-t', 'crm_config', '-n', 'dc-version', '-v', '2.1.5-test']).code).toBe(0);
    const moved =
      '<rsc_location id="cli-prefer-guest-ha1" rsc="guest-ha1" role="Started" node="pve2" score="INFINITY"/>';
    expect(onCib('cibadmin', ['--create', '-o', 'constraints', '--xml-text', moved]).code).toBe(0);
    expect(probe()).toEqual([]);
  });

  it('names each object changed with crm_resource, cibadmin or crm_attribute, and the role load restores it', () => {
    const before = readFileSync(cib, 'utf8');
    expect(onCib('crm_resource', ['-r', 'guest-ha1', '--meta', '-p', 'allow-migrate', '-v', 'false']).code).toBe(0);
    expect(probe()).toEqual(['drift=guest-ha1']);
    const score = '<rsc_location id="guest-ha1-prefers-pve1" score="5"/>';
    expect(onCib('cibadmin', ['--modify', '-o', 'constraints', '--xml-text', score]).code).toBe(0);
    expect(onCib('crm_attribute', ['-t', 'crm_config', '-n', 'stonith-max-attempts', '-v', '3']).code).toBe(0);
    expect(onCib('cibadmin', ['--delete', '--xml-text', '<rsc_location id="fence-pve2-elsewhere"/>']).code).toBe(0);
    expect(probe()).toEqual([
      'drift=cib-bootstrap-options',
      'drift=fence-pve2-elsewhere',
      'drift=guest-ha1',
      'drift=guest-ha1-prefers-pve1',
    ]);
    // The probe worked on a copy: the hand edits are still there until the role loads its file.
    expect(onCib('crm', ['configure', 'show', 'guest-ha1-prefers-pve1']).stdout).toContain('guest-ha1 5: pve1');
    roleLoad();
    expect(probe()).toEqual([]);
    const shown = onCib('crm', ['configure', 'show']).stdout;
    expect(shown).toContain('guest-ha1 200: pve1');
    expect(shown).toContain('allow-migrate=true');
    expect(shown).toContain('stonith-max-attempts=10');
    expect(shown).toContain('failure-timeout=120s');
    // VirtualDomain would otherwise write utilization into the primitive: drift after every start (lab, 2026-12-07).
    expect(shown).toContain('autoset_utilization_cpu=false');
    expect(shown).toContain('location fence-pve2-elsewhere fence-pve2 -inf: pve2');
    expect(readFileSync(cib, 'utf8')).not.toBe(before); // loads were real writes to the CIB file
  });

  it('fails with a reason (exit 2) when the CIB cannot be read', () => {
    copyFileSync(cib, join(work, 'saved.xml'));
    writeFileSync(cib, 'not xml');
    const r = onCib(PROBE, [crmFile]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^error=cibadmin -Q: /);
    copyFileSync(join(work, 'saved.xml'), cib);
  });
});

describe("ha_cluster's schema", () => {
  const schema = JSON.parse(readFileSync(join(ROLE, 'schema.json'), 'utf8')) as object;
  const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
  /** As the engine validates: a top-level value still holding {{ }} is judged after rendering, not here. */
  const errors = (vars: Vars) => {
    const valid = validate(vars) as boolean; // (not the type guard: it narrows vars to never)
    if (valid) return [];
    return (validate.errors ?? []).filter((e) => {
      const value: unknown = vars[e.instancePath.split('/')[1] ?? ''];
      return !(typeof value === 'string' && value.includes('{{'));
    });
  };

  it("accepts the lab's values over the role defaults", () => {
    expect(errors(labRoleVars())).toEqual([]);
  });

  it('refuses what would break the cluster: no corosync key, two members, an unknown fence type, a bad guest', () => {
    const defaults = yamlFile(join(ROLE, 'defaults.yaml'));
    expect(errors(defaults).map((e) => e.instancePath)).toEqual(
      expect.arrayContaining(['/ha_corosync_authkey', '/ha_ceph_client_key']),
    );
    const lab = labRoleVars();
    expect(errors({ ...lab, ha_cluster_nodes: ['pve1', 'pve2'] })[0]?.instancePath).toBe('/ha_cluster_nodes');
    expect(errors({ ...lab, ha_fence_type: 'ssh' })[0]?.instancePath).toBe('/ha_fence_type');
    const guest = { name: 'Bad Name', memory_mib: 16, rbd: { pool: 'rbd', image: 'x' } };
    expect(errors({ ...lab, kvm_guests: [guest] })[0]?.instancePath).toBe('/kvm_guests/0/name');
    const fence = { node: 'pve1', ip: '192.0.2.9', username: 'admin' };
    expect(errors({ ...lab, ha_fence_type: 'ipmilan', ha_fence_devices: [fence] })[0]?.message).toContain('password');
  });
});
