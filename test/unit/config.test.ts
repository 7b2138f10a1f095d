import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { configFromObject, ConfigError, loadConfig } from '../../src/config/load.ts';
import { configSchema } from '../../src/config/schema.ts';
import { DEFAULT_CONFIG } from '../../src/config/defaults.ts';

describe('config', () => {
  it('the published docs/config.schema.json is the schema the program validates with', () => {
    const published = JSON.parse(readFileSync(new URL('../../docs/config.schema.json', import.meta.url), 'utf8'));
    assert.deepEqual(published, JSON.parse(JSON.stringify(configSchema)), 'run: node bin/fumidai.js config schema > docs/config.schema.json');
  });

  it('no file means the defaults', () => {
    assert.deepEqual(loadConfig(null), DEFAULT_CONFIG);
  });

  it('merges a partial file over the defaults and turns durations into seconds', () => {
    const c = configFromObject({ detection: { sustainedBreach: { window: '15m' } }, policy: { idleTimeout: '2h' } });
    assert.equal(c.detection.sustainedBreach.window, 900);
    assert.equal(c.detection.sustainedBreach.refusals, DEFAULT_CONFIG.detection.sustainedBreach.refusals);
    assert.equal(c.policy.idleTimeout, 7200);
  });

  for (const [doc, message] of [
    [{ limits: { windows: [{ name: 'hour', seconds: '1x', messages: 1, recipients: 1 }] } }, /limits\.windows\.0\.seconds/],
    [{ limits: { windows: [{ name: 'hour', seconds: 60, messages: 0, recipients: 1 }] } }, /limits\.windows\.0\.messages/],
    [{ limits: { windows: [{ name: 'hour', seconds: 60, messages: 70000, recipients: 1 }] } }, /limits\.windows\.0\.messages/],
    [{ polcy: {} }, /\(top level\).*"polcy"/],
    [{ policy: { idleTimeout: '1m' } }, /policy\.idleTimeout.*300s/],
    [{ policy: { listeners: [{ port: 1 }] } }, /policy\.listeners\.0/],
    [{ limits: { windows: [{ name: 'a', seconds: 60, messages: 1, recipients: 1 }, { name: 'b', seconds: '1m', messages: 1, recipients: 1 }] } }, /same length/],
    [{ replies: { languages: ['fr'] } }, /replies\.languages\.0/],
    [{ detection: { familiarScope: 'asn' } }, /detection\.familiarScope/],
  ] as const) {
    it(`refuses ${JSON.stringify(doc)} naming the key`, () => {
      assert.throws(() => configFromObject(doc), (e: Error) => e instanceof ConfigError && message.test(e.message));
    });
  }

  it('reads YAML and JSON files and names the file in errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fumidai-config-'));
    try {
      writeFileSync(join(dir, 'a.yaml'), 'limits:\n  windows:\n    - {name: day, seconds: 1d, messages: 500, recipients: 1000}\n');
      assert.equal(loadConfig(join(dir, 'a.yaml')).limits.windows[0]!.seconds, 86400);
      writeFileSync(join(dir, 'b.json'), '{"limits": {"subBuckets": 0}}');
      assert.throws(() => loadConfig(join(dir, 'b.json')), /b\.json: limits\.subBuckets/);
      writeFileSync(join(dir, 'c.yaml'), 'limits: [unclosed');
      assert.throws(() => loadConfig(join(dir, 'c.yaml')), /c\.yaml: not valid YAML/);
      assert.throws(() => loadConfig(join(dir, 'missing.yaml')), /cannot read/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
