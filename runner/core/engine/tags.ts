/** Ansible's tag selection: --tags, --skip-tags and the special tags always, never, all, tagged, untagged. */

export interface TagFilter {
  tags: string[];
  skipTags: string[];
}

export function taskSelected(taskTags: string[], filter: TagFilter): boolean {
  const tags = new Set(taskTags);
  if (filter.skipTags.length) {
    if (
      filter.skipTags.some(
        (t) => tags.has(t) || t === 'all' || (t === 'tagged' && tags.size > 0) || (t === 'untagged' && tags.size === 0),
      )
    ) {
      // `always` tasks are skipped only when `always` itself is skipped, as Ansible.
      if (!(tags.has('always') && !filter.skipTags.includes('always'))) return false;
    }
  }
  if (tags.has('always')) return true;
  const wanted = filter.tags.length ? filter.tags : ['all'];
  if (tags.has('never')) return wanted.some((t) => t !== 'all' && tags.has(t));
  return wanted.some(
    (t) => t === 'all' || tags.has(t) || (t === 'tagged' && tags.size > 0) || (t === 'untagged' && tags.size === 0),
  );
}
