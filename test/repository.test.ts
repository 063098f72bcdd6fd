/**
 * What a clone must hold true on its own: links that resolve inside the repository, and
 * dependencies that all accept the Node.js the project runs on (no EBADENGINE from npm ci).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import semver from 'semver';

const root = path.resolve(__dirname, '..');
const docs = ['README.md', ...readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

describe('the repository on its own', () => {
  it('links only to files the repository holds, from the README and every doc', () => {
    const broken: string[] = [];
    for (const doc of docs) {
      const text = readFileSync(path.join(root, doc), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^(https?:|mailto:|#)/.test(target)) continue;
        const file = path.resolve(path.dirname(path.join(root, doc)), target.split('#')[0]);
        if (!file.startsWith(root + path.sep) || !existsSync(file)) broken.push(`${doc} → ${target}`);
      }
      if (text.includes('../shared')) broken.push(`${doc} names ../shared`);
    }
    expect(broken).toEqual([]);
  });

  it('keeps docs/API.md, the contract, in the repository', () => {
    expect(readFileSync(path.join(root, 'docs', 'API.md'), 'utf8')).toMatch(/## For client teams/);
    expect(readFileSync(path.join(root, 'schema', 'schema.graphql'), 'utf8').split('\n')[0]).toBe('# Generated from the code by `npm run schema`; do not edit. The contract is docs/API.md.');
  });

  it('installs only packages whose engines accept the Node.js that package.json names and this one', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
    const lowest = semver.minVersion(pkg.engines.node)!.version;
    const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { engines?: { node?: string } | string[]; dev?: boolean }> };
    const refusing = Object.entries(lock.packages)
      .filter(([name, p]) => name && p.engines && !Array.isArray(p.engines) && p.engines.node)
      .filter(([, p]) => {
        const range = (p.engines as { node: string }).node;
        return !semver.satisfies(process.version, range) || !semver.satisfies(lowest, range);
      })
      .map(([name, p]) => `${name.replace(/^.*node_modules\//, '')} wants node ${(p.engines as { node: string }).node}`);
    expect(refusing).toEqual([]);
  });
});
