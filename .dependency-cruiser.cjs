/**
 * cairn's layer rules, checked by `npm run deps` (part of `npm test`). See docs/architecture.md.
 *
 * runner/ is four layers, lowest first; a file may import its own layer or a lower one, never a higher one:
 *
 *   core      runner/core/      engine, modules (with their zfs/virt/ceph/raid parsers), transport, inventory,
 *                               playbook, template, vault, util (small shared helpers)
 *   app       runner/app/       the session that wires a run, playbook loading for commands, lock, reporters,
 *                               journal
 *   features  runner/features/  lab, drills, rollout (with its HTML report)
 *   cli       runner/commands/, runner/cli.ts   thin commander adapters; the only place that touches
 *                               process signals and process.exit
 *
 * Type-only imports count too (tsPreCompilationDeps): a type that points up is still a dependency up.
 */
module.exports = {
  forbidden: [
    {
      name: 'core-imports-up',
      comment:
        'core is the bottom layer: engine, modules, transport, inventory, playbook, template, vault and util ' +
        'must not know about the session, reporters, features or the CLI. Move the shared piece down into ' +
        'core, or pass it in (a callback, an option) from above.',
      severity: 'error',
      from: { path: '^runner/core/' },
      to: { path: '^runner/(app|features|commands)/|^runner/cli\\.ts$' },
    },
    {
      name: 'app-imports-up',
      comment:
        'app (session, lock, reporters, journal) wires core for a run; it must not import a feature or the CLI. ' +
        'What a feature needs from app, it imports; what app would need from a feature is injected.',
      severity: 'error',
      from: { path: '^runner/app/' },
      to: { path: '^runner/(features|commands)/|^runner/cli\\.ts$' },
    },
    {
      name: 'features-import-cli',
      comment:
        'lab, drills and rollout are used by the CLI, never the reverse: anything a feature needs from ' +
        'runner/commands/ belongs in app (or in the feature itself).',
      severity: 'error',
      from: { path: '^runner/features/' },
      to: { path: '^runner/commands/|^runner/cli\\.ts$' },
    },
    {
      name: 'util-imports-core',
      comment:
        'core/util holds the helpers everything else uses (errors, YAML sources, paths, schema checks, ' +
        'suggestions): it imports nothing else from runner/, so it can never close a cycle.',
      severity: 'error',
      from: { path: '^runner/core/util/' },
      to: { path: '^runner/', pathNot: '^runner/core/util/' },
    },
    // Directions inside the layers (from ../shared/design.md, "Directions of dependence").
    {
      name: 'modules-import-engine',
      comment:
        'A module is a check/apply pair over a connection: it never reaches into the engine that calls it. ' +
        'What it needs from a run comes in its ModuleContext.',
      severity: 'error',
      from: { path: '^runner/core/modules/' },
      to: { path: '^runner/core/engine/' },
    },
    {
      name: 'transport-imports-above-it',
      comment: 'transport (ssh, local, quoting, known_hosts) sits under modules and the engine and knows neither.',
      severity: 'error',
      from: { path: '^runner/core/transport/' },
      to: { path: '^runner/core/(modules|engine|playbook|inventory|template|vault)/' },
    },
    {
      name: 'inventory-imports-transport',
      comment: 'The inventory is data (hosts, groups, variables, patterns): it opens no connection.',
      severity: 'error',
      from: { path: '^runner/core/inventory/' },
      to: { path: '^runner/core/(transport|engine|modules)/' },
    },
    {
      name: 'lab-imports-engine',
      comment:
        'The lab builds and runs hosts (nspawn, bridge, ssh keys); it does not run plays. Drills and the ' +
        'rollout combine the lab with the engine.',
      severity: 'error',
      from: { path: '^runner/features/lab/' },
      to: { path: '^runner/(core/engine|app|features/(drills|rollout))/' },
    },
    {
      name: 'no-module-cycles',
      comment: 'Two files that import each other (directly or round a loop) are one thing in two places.',
      severity: 'error',
      from: { path: '^runner/' },
      to: { circular: true },
    },
    {
      name: 'no-folder-cycles',
      comment:
        'Folders form a tree of dependencies too: if a/ imports b/ and b/ imports a/ (also via other ' +
        'folders), neither can be understood or moved alone.',
      severity: 'error',
      scope: 'folder',
      from: { path: '^runner/' },
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that does not resolve to a file is a typo or a missing dependency.',
      severity: 'error',
      from: { path: '^runner/' },
      to: { couldNotResolve: true },
    },
    {
      name: 'not-to-dev-dep',
      comment: 'runner/ ships; test tools (vitest, fast-check, ...) must not be imported by it.',
      severity: 'error',
      from: { path: '^runner/' },
      to: { dependencyTypes: ['npm-dev'], pathNot: ['node_modules/@types/'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
  },
};
