import { parseDocument, LineCounter } from 'yaml';
const n = Number(process.argv[2]); const kind = process.argv[3];
const src = kind === 'seq' ? '- '.repeat(n)+'x\n' : kind === 'flow' ? '['.repeat(n) : kind === 'map' ? Array.from({length:n},(_, i)=>' '.repeat(i)+'k:\n').join('') : '{a: '.repeat(n);
const t = Date.now();
try {
const d = parseDocument(src, { lineCounter: new LineCounter(), prettyErrors: false, uniqueKeys: true, strict: true });
console.log(n, kind, Date.now()-t, 'ms', d.errors.map(e=>e.code+':'+e.message.slice(0,50)), process.memoryUsage().heapUsed>>20, 'MB');
} catch (e) { console.log('THROW', e.constructor.name, e.message.slice(0,100)); }
