/**
 * The playbooks of issue 17's workloads, shared by test/bench/peers.ts and test/bench/host-cost.ts:
 *   W1: 50 × `command: /bin/true` per host;
 *   W2: a 20-task config play (4 dirs, 4 copies, 4 templates, 4 lineinfile, 2 blockinfile, 2 probes).
 * Each W2 task writes its own file (a lineinfile on a copied file would be undone by the copy on every rerun).
 * One playbook file serves cairn and ansible-playbook (the template is `{{ var }}` only).
 */

/** Where W2 writes on each "host"; every loopback host shares this machine's disk, so each gets its own folder. */
export const W2_ROOT = `/var/lib/cairn-bench/w2`;

/** The template W2's template tasks render (its variables: inventory_hostname, app_port = 8080). */
export const W2_TEMPLATE = '# managed\nhost = {{ inventory_hostname }}\nport = {{ app_port }}\n';

export function w1(): string {
  const tasks = Array.from({ length: 50 }, (_, i) => `    - name: no-op ${i + 1}\n      command: /bin/true\n`);
  return `- name: w1\n  hosts: all\n  gather_facts: false\n  tasks:\n${tasks.join('')}`;
}

export function w2(templatePath: string): string {
  const base = `${W2_ROOT}/{{ inventory_hostname }}`;
  const t: string[] = [];
  for (let i = 1; i <= 4; i++) {
    t.push(`    - name: dir ${i}\n      file: { path: "${base}/d${i}", state: directory, mode: "0755" }`);
  }
  for (let i = 1; i <= 4; i++) {
    t.push(
      `    - name: copy ${i}\n      copy: { dest: "${base}/d${i}/static.conf", content: "static ${i}\\n", mode: "0644" }`,
    );
  }
  for (let i = 1; i <= 4; i++) {
    t.push(
      `    - name: template ${i}\n      template: { src: "${templatePath}", dest: "${base}/d${i}/app.conf", mode: "0644" }`,
    );
  }
  for (let i = 1; i <= 4; i++) {
    t.push(
      `    - name: lineinfile ${i}\n      lineinfile: { path: "${base}/d${i}/lines.conf", regexp: "^key${i}=", line: "key${i}=v${i}", create: true }`,
    );
  }
  for (let i = 1; i <= 2; i++) {
    t.push(
      `    - name: blockinfile ${i}\n      blockinfile: { path: "${base}/d${i}/block.conf", block: "block ${i} line a\\nblock ${i} line b", create: true }`,
    );
  }
  t.push(`    - name: probe stat\n      stat: { path: "${base}/d1/app.conf" }\n      register: probe_stat`);
  t.push(`    - name: probe command\n      command: cat ${base}/d2/static.conf\n      changed_when: false`);
  return `- name: w2\n  hosts: all\n  gather_facts: false\n  vars:\n    app_port: 8080\n  tasks:\n${t.join('\n')}\n`;
}
