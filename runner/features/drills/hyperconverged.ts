/**
 * The hyperconverged area's drills (ceph, data inconsistency, kvm/zfs): each file registers its own with
 * registerDrill (./registry.ts); ./all.ts imports this file to load them.
 */
export {};
import './ceph.js';
import './data-inconsistent.js';
import './kvm-zfs.js';
import './ha-guests.js';
