import { translatePythonPattern as t, regexSearch } from './dist/runner/core/template/regex.js';
for (const p of ['a\\Z','\\Aa','(?P<n>a)b','(?x) a b # c\n c','[]a]','[[:alpha:]]','a{,3}','\\0\\012\\101','\\u00e9','(?i)a','(?ia:x)','(?#hi)a','a\\ b','\\#','a+?','[\\b]','(?s:.)','\\$']) {
  try { console.log(JSON.stringify(p), '->', JSON.stringify(t(p)), regexSearch('xa b', p) ? 'm' : '-'); } catch (e) { console.log(JSON.stringify(p), 'ERR', e.message); }
}
for (const p of ['(a)\\1','(?P<n>a)(?P=n)','a(?=b)','a(?!b)','(?<=a)b','(?<!a)b','(?>a)','a*+','a{2}+','(?(1)a|b)','\\N{DASH}','(?L)a','\\9']) {
  try { t(p); console.log(p, 'NOERR'); } catch (e) { console.log(e.message); }
}
