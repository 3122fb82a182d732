import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import { parseConfig } from '../../src/config/load.ts';
import type { SiteConfig } from '../../src/config/schema.ts';
import type { EdgeContext } from '../../src/context.ts';
import { EdgeError } from '../../src/errors.ts';
import { silentLogger } from '../../src/log.ts';
import { createNetworkGuard } from '../../src/network-guard.ts';

const socket = process.env.EDGE_TEST_DOCKER_SOCKET;
const docker = new Docker({ socketPath: socket });
const run = randomBytes(3).toString('hex');
const names = { staging: `ng-${run}-staging`, prod: `ng-${run}-prod` };

function contextFor(networks: { staging: string; prod: string }): EdgeContext {
  const config = parseConfig({
    docker: { socket },
    sites: [
      {
        name: 'staging',
        hosts: ['staging.example.test'],
        network: networks.staging,
        routes: [{ path: '/', upstream: 'http://web:80' }],
      },
      {
        name: 'prod',
        hosts: ['app.example.test'],
        network: networks.prod,
        routes: [{ path: '/', upstream: 'http://web:80' }],
      },
    ],
  });
  return { config, logger: silentLogger } as EdgeContext;
}

async function createNetwork(name: string, bridge: string): Promise<void> {
  await docker.createNetwork({
    Name: name,
    Driver: 'bridge',
    Options: { 'com.docker.network.bridge.name': bridge },
  });
}

/** Starts a container on `network` and returns its address there. */
async function containerAddress(network: string): Promise<string> {
  const container = await docker.createContainer({
    Image: 'edge-test/busybox:1',
    Cmd: ['sleep', '60'],
    name: `${network}-client`,
    HostConfig: { NetworkMode: network, AutoRemove: false },
  });
  await container.start();
  const info = await container.inspect();
  const address = info.NetworkSettings.Networks[network]?.IPAddress;
  assert.ok(address, `container on ${network} has an address`);
  return address;
}

describe('network guard on a real Docker engine', () => {
  const sites: Record<string, SiteConfig> = {};
  const clients: Record<string, string> = {};
  const gateways: Record<string, string> = {};

  before(async () => {
    assert.ok(socket, 'EDGE_TEST_DOCKER_SOCKET is set by scripts/test.sh');
    await createNetwork(names.staging, `dkt-ng${run}s`);
    await createNetwork(names.prod, `dkt-ng${run}p`);
    clients.staging = await containerAddress(names.staging);
    clients.prod = await containerAddress(names.prod);
    for (const key of ['staging', 'prod'] as const) {
      const info = await docker.getNetwork(names[key]).inspect();
      const gateway = info.IPAM?.Config?.[0]?.Gateway;
      assert.ok(gateway, `Docker reports a gateway for ${names[key]}`);
      gateways[key] = gateway;
    }
    const [staging, prod] = contextFor(names).config.sites as [SiteConfig, SiteConfig];
    sites.staging = staging;
    sites.prod = prod;
  });

  after(async () => {
    for (const network of Object.values(names)) {
      await docker
        .getContainer(`${network}-client`)
        .remove({ force: true })
        .catch(() => {});
      await docker
        .getNetwork(network)
        .remove()
        .catch(() => {});
    }
  });

  it('refuses a staging container asking for prod', async () => {
    const guard = await createNetworkGuard(contextFor(names));
    assert.ok(guard);
    assert.equal(guard.allows(clients.staging!, sites.prod!), false);
    assert.equal(guard.allows(`::ffff:${clients.staging}`, sites.prod!), false);
    assert.equal(guard.allows(clients.prod!, sites.staging!), false);
  });

  it('lets each container reach its own site', async () => {
    const guard = await createNetworkGuard(contextFor(names));
    assert.ok(guard);
    assert.equal(guard.allows(clients.staging!, sites.staging!), true);
    assert.equal(guard.allows(clients.prod!, sites.prod!), true);
  });

  it('lets the gateway through as public traffic', async () => {
    const guard = await createNetworkGuard(contextFor(names));
    assert.ok(guard);
    assert.equal(guard.allows(gateways.staging!, sites.prod!), true);
    assert.equal(guard.allows(gateways.prod!, sites.staging!), true);
  });

  it('fails start-up for a missing network', async () => {
    const context = contextFor({ staging: names.staging, prod: `ng-${run}-missing` });
    await assert.rejects(createNetworkGuard(context), (error) => {
      assert.ok(error instanceof EdgeError);
      assert.equal(error.code, 'EDGE_NETWORK_UNKNOWN');
      assert.match(error.message, new RegExp(`ng-${run}-missing: not found`));
      return true;
    });
  });

  it('returns no guard when no site names a network', async () => {
    const config = parseConfig({
      docker: { socket },
      sites: [
        {
          name: 'prod',
          hosts: ['app.example.test'],
          routes: [{ path: '/', upstream: 'http://web:80' }],
        },
      ],
    });
    const guard = await createNetworkGuard({ config, logger: silentLogger } as EdgeContext);
    assert.equal(guard, undefined);
  });
});
