import { Cluster } from 'ioredis';
import { counterStoreSuite } from './counter-store.suite.ts';
import { uniqueName } from './services.ts';
import { startRedisCluster } from './redis-cluster-support.ts';
import { requireTools } from '../support/requirements.ts';
import { RedisCounterStore } from '../../src/store/redis/redis-counter-store.ts';

// The counter conformance suite against a real Redis Cluster of three masters, started
// by this file on free loopback ports (own data folder, removed after). A script that
// touched keys of two slots would fail with CROSSSLOT here, so passing shows that every
// operation stays within the sender's slot (the activity index is kept per slot).

const req = await requireTools('conformance: Redis Cluster', { bin: ['redis-server', 'redis-cli'] }, 'apt-get install -y redis-server');

counterStoreSuite(
  'Redis Cluster (3 masters)',
  async (layout) => {
    const c = await startRedisCluster();
    const redis = new Cluster([{ host: '127.0.0.1', port: c.ports[0]! }], { enableOfflineQueue: true });
    await new Promise<void>((resolve, reject) => {
      redis.once('ready', () => resolve());
      redis.once('error', reject);
    });
    const store = new RedisCounterStore(redis, { layout, prefix: uniqueName('conf'), hllThreshold: 16, cluster: true });
    await store.loadScripts();
    return {
      store,
      async cleanup() {
        redis.disconnect();
        c.stop();
      },
    };
  },
  { skip: req.skip },
);
