import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { createLogger, setLogLevel, InvalidLogLevelError, type LoggerOptions } from '../../src/observability/logger.js';
import { logLineJsonSchema, renderLogSchema } from '../../src/observability/log-schema.js';
import { redactUrlQuery, scrubCredentials } from '../../src/observability/redaction.js';
import { formatTextLine } from '../../src/observability/text-format.js';

// ajv-formats is CommonJS with a default export; under NodeNext its type is the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function capture() {
  const lines: string[] = [];
  let pending = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      pending += chunk.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        lines.push(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
      done();
    },
  });
  return { stream, lines };
}

function jsonLogger(opts: Partial<LoggerOptions> = {}) {
  const out = capture();
  const logger = createLogger({ level: 'info', format: 'json', destination: out.stream, ...opts });
  return { logger, lines: out.lines, parsed: () => out.lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('JSON log lines', () => {
  test('every line validates against the published schema', async () => {
    const { logger, lines } = jsonLogger({ level: 'trace' });
    logger.info('plain message');
    logger.info({ count: 3 }); // object only: still gets a message field
    logger.warn({ component: 'db', migrations: ['0001'] }, 'inline component');
    logger.error(new Error('bare error'));
    const smtp = logger.child({ component: 'smtp', session_id: 's-1', remote_addr: '192.0.2.1' });
    smtp.debug({ tenant_id: 't-1', plugin_id: 'p-1' }, 'with context');
    smtp.child({ request_id: 'r-1' }).trace('grandchild');
    smtp.error({ err: Object.assign(new Error('with code'), { code: 'E_X' }) }, 'failed');
    await tick();

    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    const validate = ajv.compile(logLineJsonSchema());
    assert.equal(lines.length, 7);
    for (const line of lines) {
      const rec = JSON.parse(line) as Record<string, unknown>;
      assert.ok(validate({ ...rec }), `${line}\n${JSON.stringify(validate.errors)}`);
      // No noise fields, and `component` never twice in the raw text (pino does not de-duplicate).
      assert.equal('pid' in rec || 'hostname' in rec || 'time' in rec || 'msg' in rec, false, line);
      assert.equal(line.split('"component":').length, 2, line);
    }
  });

  test('exact field names and values', async () => {
    const { logger, parsed } = jsonLogger();
    logger.child({ component: 'smtp', session_id: 'abc' }).info({ size: 12 }, 'message accepted');
    logger.info('from the root');
    await tick();
    const [a, b] = parsed();
    assert.equal(a.level, 'info');
    assert.equal(a.component, 'smtp');
    assert.equal(a.session_id, 'abc');
    assert.equal(a.message, 'message accepted');
    assert.equal(a.size, 12);
    assert.match(String(a.timestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Math.abs(Date.parse(String(a.timestamp)) - Date.now()) < 60_000);
    assert.equal(b.component, 'main');
  });

  test('secret fields are redacted down to three levels, siblings kept', async () => {
    const { logger, lines, parsed } = jsonLogger();
    logger.info(
      {
        password: 'p0',
        user: { email: 'a@example.com', token: 't1' },
        request: { headers: { authorization: 'Bearer t2', cookie: 'sid=t3', 'set-cookie': 'sid=t4', accept: '*/*' } },
        config: { s3: { creds: { secret_access_key: 't5' } }, security: { master_key: 't6' } },
        plugin: { secret: 't7' },
      },
      'secrets inside',
    );
    logger.child({ component: 'x', api_key: 't8' }).info('binding secret');
    await tick();
    const raw = lines.join('\n');
    for (const secret of ['p0', 't1', 't2', 't3', 't4', 't5', 't6', 't7', 't8']) {
      assert.ok(!raw.includes(`"${secret}"`) && !raw.includes(`${secret}"`), `secret ${secret} leaked: ${raw}`);
    }
    const [rec] = parsed() as Array<Record<string, any>>;
    assert.equal(rec.password, '[redacted]');
    assert.equal(rec.user.token, '[redacted]');
    assert.equal(rec.user.email, 'a@example.com');
    assert.equal(rec.request.headers.authorization, '[redacted]');
    assert.equal(rec.request.headers['set-cookie'], '[redacted]');
    assert.equal(rec.request.headers.accept, '*/*');
    assert.equal(rec.config.s3.creds.secret_access_key, '[redacted]');
    assert.equal(rec.config.security.master_key, '[redacted]');
  });

  test('setLogLevel changes the root and the children that follow it', async () => {
    const { logger, parsed } = jsonLogger();
    const child = logger.child({ component: 'queue' });
    child.debug('hidden');
    setLogLevel(logger, 'debug');
    child.debug('shown');
    setLogLevel(logger, 'error');
    child.warn('hidden again');
    await tick();
    assert.deepEqual(parsed().map((r) => r.message), ['shown']);
    assert.throws(() => setLogLevel(logger, 'verbose'), InvalidLogLevelError);
    assert.throws(() => createLogger({ level: 'loud', format: 'json' }), /invalid log level "loud"/);
  });

  test('a component in base is refused (it would be duplicated in every child line)', () => {
    assert.throws(() => createLogger({ level: 'info', format: 'json', base: { component: 'x' } }), /component/);
    const { logger, parsed } = jsonLogger({ base: { node: 'mx-2' } });
    logger.child({ component: 'http' }).info('hi');
    assert.equal(parsed()[0].node, 'mx-2');
  });

  test('the schema file in docs/ is the rendered schema', () => {
    const file = readFileSync(new URL('../../docs/log-format.schema.json', import.meta.url), 'utf8');
    assert.equal(file, renderLogSchema(), 'run writeLogSchemaFile() (mairust docs generate) to refresh it');
  });
});

describe('text log lines', () => {
  test('HH:MM:SS.mmm LEVEL [component] message key=value', async () => {
    const out = capture();
    const logger = createLogger({ level: 'info', format: 'text', destination: out.stream });
    logger.child({ component: 'smtp', session_id: 's1' }).info({ size: 2, from: 'a b', password: 'pw' }, 'message accepted');
    logger.warn('no component');
    logger.error(new Error('broken thing'));
    await tick();
    await tick();
    assert.match(out.lines[0], /^\d\d:\d\d:\d\d\.\d{3} INFO  \[smtp\] message accepted session_id=s1 size=2 from="a b" password=\[redacted\]$/);
    assert.match(out.lines[1], /^\d\d:\d\d:\d\d\.\d{3} WARN  \[main\] no component$/);
    assert.match(out.lines[2], /^\d\d:\d\d:\d\d\.\d{3} ERROR \[main\] broken thing$/);
    assert.match(out.lines[3], /^ {4}Error: broken thing$/); // stack follows, indented
    assert.ok(!out.lines.some((l) => l.startsWith('{')), 'no JSON in text mode');
  });

  test('a line that is not JSON passes through unchanged', () => {
    assert.equal(formatTextLine('not json'), 'not json');
  });
});

describe('redaction helpers', () => {
  test('secret query parameters are masked in logged URLs', () => {
    assert.equal(redactUrlQuery('/a/b'), '/a/b');
    assert.equal(redactUrlQuery('/x?access_token=abc&limit=5&api%5Fkey=k'), '/x?access_token=[redacted]&limit=5&api%5Fkey=[redacted]');
    assert.equal(redactUrlQuery('/x?flag&password=p'), '/x?flag&password=[redacted]');
  });

  test('credentials in connection strings are masked', () => {
    assert.equal(
      scrubCredentials('connect postgres://mairust:s3cr3t@db:5432/x failed; also s3://K:V@h'),
      'connect postgres://mairust:***@db:5432/x failed; also s3://K:***@h',
    );
    assert.equal(scrubCredentials('http://host:8080/path'), 'http://host:8080/path');
  });
});
