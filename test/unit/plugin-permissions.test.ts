import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  addedPermissions, canWrite, filterPayload, highRiskReasons, isHighRisk, NO_PERMISSIONS, parsePermissions,
  PREVIEW_BYTES, validatePermissions, type HookPayloadSource, type Permissions,
} from '../../src/plugins/permissions.js';

const perms = (p: Partial<Permissions>): Permissions => ({ ...NO_PERMISSIONS, ...p });

function source(text = 'Hello'): HookPayloadSource {
  return {
    hook_type: 'post_receive',
    message_id: 'msg-1',
    tenant_id: 't-1',
    mailbox: 'alice@example.com',
    envelope: { from: 'bob@example.org', to: ['alice@example.com'] },
    headers: { subject: ['Hi'], 'x-secret': ['s3cret'] },
    body: {
      text,
      size: 12345,
      has_attachments: true,
      attachments: [{ filename: 'a.bin', content_type: 'application/octet-stream', size: 5000, content: new Uint8Array(5000).fill(7) }],
    },
    callback_url: 'https://mx.example.com/internal/plugins/callback/msg-1',
    metadata: { received_at: '2026-11-29T08:00:00Z', client_ip: '192.0.2.1' },
  };
}

describe('plugin permissions', () => {
  it('defaults to nothing granted and parses every key', () => {
    assert.deepEqual(parsePermissions(undefined), { permissions: NO_PERMISSIONS, errors: [] });
    const all = {
      read_headers: true, read_body: 'full', read_attachments: 'preview', write_tags: true, write_flags: true,
      move_message: true, write_metadata: true, delete_message: true,
    };
    assert.deepEqual(parsePermissions(all), { permissions: all, errors: [] });
  });

  it('reports wrong types, unknown values and unknown keys by path', () => {
    const { errors } = parsePermissions({ read_headers: 1, read_attachments: 'some', send_mail: true }, 'p');
    assert.deepEqual(errors, [
      { path: 'p.read_headers', message: 'must be true or false' },
      { path: 'p.read_attachments', message: 'must be one of none, metadata, preview, full' },
      { path: 'p.send_mail', message: "unknown permission 'send_mail'" },
    ]);
    assert.deepEqual(parsePermissions([]).errors, [{ path: 'permissions', message: 'must be a table' }]);
  });

  it('enforces the dependency rules', () => {
    assert.deepEqual(validatePermissions(perms({ write_flags: true, delete_message: true })), [
      'write_flags needs read_headers = true',
      'delete_message needs read_headers = true',
    ]);
    assert.deepEqual(validatePermissions(perms({ read_headers: true, move_message: true })), [
      'move_message needs read_body = "preview" or "full"',
    ]);
    assert.deepEqual(validatePermissions(perms({ read_headers: true, move_message: true, read_body: 'preview' })), []);
    assert.deepEqual(validatePermissions(perms({ read_body: 'full', read_attachments: 'full' })), []);
  });

  it('flags high-risk grants', () => {
    assert.equal(isHighRisk(perms({ read_headers: true, read_body: 'preview', write_tags: true })), false);
    assert.equal(isHighRisk(perms({ read_body: 'full' })), true);
    assert.equal(isHighRisk(perms({ read_attachments: 'full' })), true);
    assert.equal(isHighRisk(perms({ read_headers: true, delete_message: true })), true);
    assert.equal(isHighRisk(NO_PERMISSIONS, 'allowlist'), false);
    assert.deepEqual(highRiskReasons(NO_PERMISSIONS, 'unlimited'), ['network = "unlimited"']);
  });

  it('lists what an upgrade adds, ignoring narrowed grants', () => {
    const old = perms({ read_headers: true, read_body: 'full', read_attachments: 'metadata', write_tags: true });
    assert.deepEqual(addedPermissions(old, old), []);
    assert.deepEqual(addedPermissions(old, perms({ read_headers: true, read_body: 'preview' })), []);
    assert.deepEqual(
      addedPermissions(old, perms({ read_headers: true, read_body: 'full', read_attachments: 'preview', write_tags: true, delete_message: true })),
      [
        { permission: 'read_attachments', from: 'metadata', to: 'preview' },
        { permission: 'delete_message', from: false, to: true },
      ],
    );
    assert.deepEqual(addedPermissions(NO_PERMISSIONS, perms({ read_headers: true, read_body: 'preview' })), [
      { permission: 'read_headers', from: false, to: true },
      { permission: 'read_body', from: 'none', to: 'preview' },
    ]);
  });

  it('answers canWrite for each write kind', () => {
    const p = perms({ read_headers: true, write_tags: true, write_metadata: true });
    assert.deepEqual(
      (['tags', 'flags', 'move', 'metadata', 'delete'] as const).map((k) => canWrite(p, k)),
      [true, false, false, true, false],
    );
    const q = perms({ read_headers: true, read_body: 'preview', write_flags: true, move_message: true, delete_message: true });
    assert.deepEqual((['tags', 'flags', 'move', 'metadata', 'delete'] as const).map((k) => canWrite(q, k)), [false, true, true, false, true]);
  });

  it('sends only the envelope when nothing is granted', () => {
    const out = filterPayload(source(), NO_PERMISSIONS);
    assert.equal('headers' in out, false);
    assert.deepEqual(out.body, { size: 12345, has_attachments: true });
    assert.deepEqual(out.envelope, { from: 'bob@example.org', to: ['alice@example.com'] });
    assert.equal(out.metadata.client_ip, '192.0.2.1');
    assert.equal(JSON.stringify(out).includes('s3cret'), false);
    assert.equal(JSON.stringify(out).includes('Hello'), false);
  });

  it('includes headers and a 4 KiB character-safe preview', () => {
    // 'é' is 2 bytes: an odd budget would split one if the cut were by bytes.
    const text = 'a' + 'é'.repeat(3000);
    const out = filterPayload(source(text), perms({ read_headers: true, read_body: 'preview' }));
    assert.deepEqual(out.headers, { subject: ['Hi'], 'x-secret': ['s3cret'] });
    assert.equal(out.body.full, undefined);
    assert.equal(out.body.preview, 'a' + 'é'.repeat(2047));
    assert.ok(Buffer.byteLength(out.body.preview!) <= PREVIEW_BYTES);
    assert.equal(out.body.attachments, undefined);
    const emoji = filterPayload(source('😀'.repeat(2000)), perms({ read_body: 'preview' })).body.preview!;
    assert.equal(emoji, '😀'.repeat(1024));
  });

  it('includes the full body and attachments per level', () => {
    const text = 'x'.repeat(10_000);
    const full = filterPayload(source(text), perms({ read_body: 'full', read_attachments: 'full' }));
    assert.equal(full.body.full, text);
    assert.equal(full.body.preview, undefined);
    assert.equal(Buffer.from(full.body.attachments![0].content_base64!, 'base64').length, 5000);
    assert.equal(full.body.attachments![0].truncated, false);

    const meta = filterPayload(source(), perms({ read_attachments: 'metadata' }));
    assert.deepEqual(meta.body.attachments, [{ filename: 'a.bin', content_type: 'application/octet-stream', size: 5000 }]);

    const preview = filterPayload(source(), perms({ read_attachments: 'preview' }));
    assert.equal(Buffer.from(preview.body.attachments![0].content_base64!, 'base64').length, PREVIEW_BYTES);
    assert.equal(preview.body.attachments![0].truncated, true);
  });

  it('does not share mutable state with the source', () => {
    const src = source();
    const out = filterPayload(src, perms({ read_headers: true }));
    out.headers!.subject.push('changed');
    out.envelope.to.push('mallory@example.com');
    assert.deepEqual(src.headers.subject, ['Hi']);
    assert.deepEqual(src.envelope.to, ['alice@example.com']);
  });
});
