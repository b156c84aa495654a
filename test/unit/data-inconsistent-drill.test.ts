/**
 * The parsers of the alert-data-inconsistent drill, on outputs captured from the lab's Ceph 16.2.15 (sources in
 * test/fixtures/ceph/README.md), and their refusals of anything else.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseOsdFindHost, parseOsdMap } from '../../runner/features/drills/data-inconsistent.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/ceph/${name}`, import.meta.url), 'utf8');

describe('ceph osd map -f json', () => {
  it('gives the PG and the acting set, primary named', () => {
    expect(parseOsdMap(fixture('lab-osd-map.json'))).toEqual({ pgid: '1.a', acting: [1, 2, 0], primary: 1 });
  });

  it('drops the hole of a missing OSD (CRUSH_ITEM_NONE, 2147483647)', () => {
    const text = JSON.stringify({ pgid: '1.3', acting: [2, 2147483647, 0], acting_primary: 2 });
    expect(parseOsdMap(text).acting).toEqual([2, 0]);
  });

  it.each([
    ['not JSON', 'Error ENOENT: pool foo does not exist', /did not print JSON/],
    ['no pgid', '{"acting":[1],"acting_primary":1}', /without pgid/],
    ['no acting set', '{"pgid":"1.a","acting_primary":1}', /without pgid, acting and acting_primary/],
  ])('refuses %s', (_what, text, message) => {
    expect(() => parseOsdMap(text)).toThrow(message);
  });
});

describe('ceph osd find -f json', () => {
  it("gives the OSD's host", () => {
    expect(parseOsdFindHost(fixture('lab-osd-find.json'))).toBe('pve1');
  });

  it('falls back to the CRUSH location when the top-level host is missing', () => {
    expect(parseOsdFindHost('{"osd":3,"crush_location":{"host":"pve3","root":"default"}}')).toBe('pve3');
  });

  it.each([
    ['not JSON', 'Error ENOENT: osd.9 does not exist', /did not print JSON/],
    ['no host anywhere', '{"osd":3,"crush_location":{"root":"default"}}', /without the OSD's host/],
  ])('refuses %s', (_what, text, message) => {
    expect(() => parseOsdFindHost(text)).toThrow(message);
  });
});
