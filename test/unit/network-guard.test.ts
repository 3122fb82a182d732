import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import type { SiteConfig } from '../../src/config/schema.ts';
import { EdgeError } from '../../src/errors.ts';
import {
  learnNetworks,
  networkNames,
  SubnetNetworkGuard,
  type InspectNetwork,
  type NetworkInspection,
} from '../../src/network-guard.ts';

const config = parseConfig({
  sites: [
    {
      name: 'staging',
      hosts: ['staging.example.test'],
      network: 'caliente_staging',
      routes: [{ path: '/', upstream: 'http://frontend-staging:80' }],
    },
    {
      name: 'prod',
      hosts: ['app.example.test'],
      network: 'caliente_prod',
      routes: [{ path: '/', upstream: 'http://frontend-prod:80' }],
    },
    {
      name: 'tools',
      hosts: ['tools.example.test'],
      routes: [{ path: '/', upstream: 'http://tools:80' }],
    },
  ],
});
const [staging, prod, tools] = config.sites as [SiteConfig, SiteConfig, SiteConfig];

const inspections: Record<string, NetworkInspection> = {
  caliente_staging: { IPAM: { Config: [{ Subnet: '10.9.1.0/24', Gateway: '10.9.1.1' }] } },
  caliente_prod: {
    IPAM: { Config: [{ Subnet: '10.9.2.0/24', Gateway: '10.9.2.1' }, { Subnet: 'fd00:9:2::/64' }] },
  },
};

const inspect: InspectNetwork = async (name) => {
  const found = inspections[name];
  if (found === undefined)
    throw Object.assign(new Error(`network ${name} not found`), { statusCode: 404 });
  return found;
};

async function guard(): Promise<SubnetNetworkGuard> {
  return new SubnetNetworkGuard(await learnNetworks(networkNames(config.sites), inspect));
}

describe('network guard', () => {
  it('lets a container reach the site on its own network', async () => {
    const g = await guard();
    assert.equal(g.allows('10.9.1.7', staging), true);
    assert.equal(g.allows('10.9.2.7', prod), true);
  });

  it('refuses a container asking for the other network site', async () => {
    const g = await guard();
    assert.equal(g.allows('10.9.1.7', prod), false);
    assert.equal(g.allows('10.9.2.7', staging), false);
  });

  it('refuses a container asking for a site without network', async () => {
    const g = await guard();
    assert.equal(g.allows('10.9.1.7', tools), false);
  });

  it('treats the network gateway as the host', async () => {
    const g = await guard();
    assert.equal(g.allows('10.9.1.1', prod), true);
    assert.equal(g.allows('10.9.2.1', staging), true);
  });

  it('lets addresses outside every network through', async () => {
    const g = await guard();
    assert.equal(g.allows('203.0.113.9', prod), true);
    assert.equal(g.allows('2001:db8::9', staging), true);
    assert.equal(g.allows('127.0.0.1', prod), true);
  });

  it('reads IPv4-mapped IPv6 client addresses', async () => {
    const g = await guard();
    assert.equal(g.allows('::ffff:10.9.1.7', prod), false);
    assert.equal(g.allows('::ffff:10.9.1.7', staging), true);
    assert.equal(g.allows('::ffff:10.9.1.1', prod), true);
  });

  it('matches IPv6 subnets and derives their gateway', async () => {
    const g = await guard();
    assert.equal(g.allows('fd00:9:2::5', staging), false);
    assert.equal(g.allows('fd00:9:2::5', prod), true);
    assert.equal(g.allows('fd00:9:2::1', staging), true);
  });

  it('refuses an unreadable client address', async () => {
    const g = await guard();
    assert.equal(g.allows('', prod), false);
    assert.equal(g.allows('not-an-address', prod), false);
  });

  it('derives a missing IPv4 gateway as the first address', async () => {
    const [network] = await learnNetworks(['bare'], async () => ({
      IPAM: { Config: [{ Subnet: '10.9.3.0/24' }] },
    }));
    assert.equal(network?.gateways[0]?.toString(), '10.9.3.1');
  });

  it('fails start-up for a network Docker does not know', async () => {
    await assert.rejects(
      learnNetworks(['caliente_missing'], inspect, '/run/test.sock'),
      (error) => {
        assert.ok(error instanceof EdgeError);
        assert.equal(error.code, 'EDGE_NETWORK_UNKNOWN');
        assert.match(error.message, /caliente_missing: not found/);
        return true;
      },
    );
  });

  it('names the socket when Docker is unreachable', async () => {
    const down: InspectNetwork = async () => {
      throw new Error('connect ENOENT /run/test.sock');
    };
    await assert.rejects(learnNetworks(['caliente_prod'], down, '/run/test.sock'), (error) => {
      assert.ok(error instanceof EdgeError);
      assert.match(error.message, /Docker unreachable at \/run\/test\.sock/);
      return true;
    });
  });

  it('fails start-up for a network without subnet', async () => {
    await assert.rejects(
      learnNetworks(['empty'], async () => ({ IPAM: { Config: [] } })),
      (error) => error instanceof EdgeError && error.code === 'EDGE_NETWORK_NO_SUBNET',
    );
  });

  it('lists each site network once', () => {
    const sites = [...config.sites, { ...staging, name: 'staging-2', hosts: ['s2.example.test'] }];
    assert.deepEqual(networkNames(sites), ['caliente_staging', 'caliente_prod']);
  });
});
