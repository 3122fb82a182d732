import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContainerInspect, ImageInspect } from '../../src/docker/engine.ts';
import { planRecreate } from '../../src/docker/recreate.ts';

const OLD_ID = 'abcdef1234567890'.padEnd(64, '0');

function oldContainer(): ContainerInspect {
  return {
    Id: OLD_ID,
    Name: '/svc-web',
    Image: 'sha256:old',
    Config: {
      Hostname: OLD_ID.slice(0, 12),
      Env: ['PATH=/usr/bin:/bin', 'APP_VERSION=v1', 'FOO=bar', 'DATABASE_URL=postgres://db/app'],
      Cmd: ['node', '/app/server.js'],
      Entrypoint: null,
      WorkingDir: '/app',
      User: 'node',
      Labels: {
        'edge.test.image': 'deploy-app',
        'com.docker.compose.project': 'caliente',
        'com.docker.compose.service': 'web',
      },
      Healthcheck: { Test: ['CMD', 'true'] },
      StopSignal: 'SIGTERM',
      ExposedPorts: { '8080/tcp': {} },
      Volumes: { '/data': {} },
      Tty: false,
    },
    HostConfig: {
      NetworkMode: 'front',
      RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 },
      Binds: ['/srv/media:/media'],
      ContainerIDFile: '',
    },
    Mounts: [
      { Type: 'bind', Source: '/srv/media', Destination: '/media', RW: true },
      { Type: 'volume', Name: 'f'.repeat(64), Destination: '/data', RW: true },
    ],
    NetworkSettings: {
      Networks: {
        front: {
          Aliases: ['web', 'web-front', OLD_ID.slice(0, 12)],
          IPAddress: '10.1.0.5',
          NetworkID: 'n1',
          EndpointID: 'e1',
        },
        back: {
          Aliases: ['web-back', OLD_ID.slice(0, 12)],
          IPAddress: '10.2.0.5',
          NetworkID: 'n2',
          EndpointID: 'e2',
        },
      },
    },
  } as unknown as ContainerInspect;
}

const oldImage = {
  Config: {
    Env: ['PATH=/usr/bin:/bin', 'APP_VERSION=v1'],
    Cmd: ['node', '/app/server.js'],
    Entrypoint: null,
    WorkingDir: '/app',
    User: 'node',
    Labels: { 'edge.test.image': 'deploy-app' },
    Healthcheck: { Test: ['CMD', 'true'] },
    StopSignal: 'SIGTERM',
    Volumes: { '/data': {} },
  },
} as unknown as ImageInspect;

describe('docker recreate plan', () => {
  const plan = planRecreate(oldContainer(), oldImage, 'reg/web:v2', 'svc-web-next', {
    'caliente-edge.service': 'web',
  });
  const options = plan.options;

  it('drops values inherited from the old image', () => {
    assert.deepEqual(options.Env, ['FOO=bar', 'DATABASE_URL=postgres://db/app']);
    assert.equal(options.Cmd, undefined);
    assert.equal(options.WorkingDir, undefined);
    assert.equal(options.User, undefined);
    assert.equal(options.Healthcheck, undefined);
    assert.equal(options.StopSignal, undefined);
    assert.equal(options.Volumes, undefined);
  });

  it('keeps user labels including Compose labels', () => {
    assert.deepEqual(options.Labels, {
      'com.docker.compose.project': 'caliente',
      'com.docker.compose.service': 'web',
      'caliente-edge.service': 'web',
    });
  });

  it('uses the new image and name', () => {
    assert.equal(options.Image, 'reg/web:v2');
    assert.equal(options.name, 'svc-web-next');
  });

  it('drops the old short id as host name', () => {
    assert.equal(options.Hostname, undefined);
  });

  it('keeps restart policy and mounts', () => {
    assert.deepEqual(options.HostConfig?.RestartPolicy, {
      Name: 'unless-stopped',
      MaximumRetryCount: 0,
    });
    assert.deepEqual(options.HostConfig?.Binds, ['/srv/media:/media']);
    assert.equal('ContainerIDFile' in (options.HostConfig ?? {}), false);
  });

  it('remounts anonymous volumes by name', () => {
    assert.deepEqual(options.HostConfig?.Mounts, [
      { Type: 'volume', Source: 'f'.repeat(64), Target: '/data', ReadOnly: false },
    ]);
  });

  it('creates on one network and connects the rest', () => {
    assert.equal(plan.primaryNetwork, 'front');
    assert.equal(options.HostConfig?.NetworkMode, 'front');
    assert.deepEqual(options.NetworkingConfig, {
      EndpointsConfig: { front: { Aliases: ['web', 'web-front'] } },
    });
    assert.deepEqual(plan.extraNetworks, [['back', { Aliases: ['web-back'] }]]);
  });

  it('keeps values the user set over the image', () => {
    const custom = oldContainer();
    custom.Config.Cmd = ['node', '/app/server.js', '--workers=2'];
    custom.Config.User = 'root';
    custom.Config.Hostname = 'web-host';

    const options = planRecreate(custom, oldImage, 'reg/web:v2', 'x', {}).options;

    assert.deepEqual(options.Cmd, ['node', '/app/server.js', '--workers=2']);
    assert.equal(options.User, 'root');
    assert.equal(options.Hostname, 'web-host');
  });
});
