import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { deployCommand } from '../../src/deploy/cli.ts';

interface Workflow {
  permissions: Record<string, string>;
  jobs: Record<string, { steps: { name?: string; run?: string; env?: Record<string, string> }[] }>;
}

const docs = readFileSync('docs/deploy.md', 'utf8');

for (const file of ['backend', 'frontend']) {
  describe(`example workflow ${file}`, () => {
    const text = readFileSync(`examples/github-workflows/${file}.yml`, 'utf8');
    const workflow = parse(text) as Workflow;
    const deployStep = Object.values(workflow.jobs)
      .flatMap((job) => job.steps)
      .find((step) => step.name === 'deploy');

    it('passes only options the client accepts', async () => {
      const flags = [...(deployStep?.run ?? '').matchAll(/(--[a-z-]+)/g)].map((match) => match[1]!);
      const argv = flags.filter((flag) => flag !== '--rm').flatMap((flag) => [flag, 'x']);
      const io = { stdout: { write: () => true }, stderr: { write: () => true }, env: {} };

      assert.ok(
        flags.includes('--service') && flags.includes('--image') && flags.includes('--url'),
      );
      assert.equal(await deployCommand([...argv, '--help'], io), 0);
    });

    it('documents every secret it uses', () => {
      const secrets = [...text.matchAll(/secrets\.([A-Z_]+)/g)].map((match) => match[1]!);

      assert.ok(secrets.includes('EDGE_DEPLOY_SECRET_PROD'));
      for (const secret of secrets)
        assert.ok(docs.includes(secret), `${secret} is not in docs/deploy.md`);
    });

    it('can push to GHCR', () => {
      assert.equal(workflow.permissions.packages, 'write');
    });
  });
}
