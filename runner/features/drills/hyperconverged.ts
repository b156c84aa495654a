/** Drills of this area register themselves here with registerDrill (see ./types.ts). */
export {};
import './ceph.js';
import './data-inconsistent.js';
import './kvm-zfs.js';
