/** Every drill cairn ships; each area's file registers its own. */
import './ha.js';
import './monitoring.js';
import './backup.js';
import './hyperconverged.js';
import './rollout.js';
import './drift.js';
import './tls.js';
import './canary.js';
import './vm-faults.js';
