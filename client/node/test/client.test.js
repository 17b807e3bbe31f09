'use strict';
// quiver-client against a real quiverd ($QUIVERD): round trips, exact
// int64s, large responses, errors, API keys, raw calls and the typings.
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');
const quiver = require('..');
const { startQuiverd } = require('./quiverd');

const client = (address, extra = {}) => new quiver.QuiverClient({ address, timeoutMs: 30000, ...extra });

describe('quiver-client', () => {
  let server;
  let q;
  before(async () => {
    server = await startQuiverd([], { makeClient: (a) => client(a, { timeoutMs: 2000 }) });
    q = client(server.address);
  });
  after(async () => {
    if (q) q.close();
    if (server) await server.stop();
  });

  test('health answers for the server and each service', async () => {
    assert.equal(await q.health(), 'SERVING');
    assert.equal(await q.health('quiver.v1.SearchService'), 'SERVING');
    await assert.rejects(q.health('no.such.Service'), quiver.NotFoundError);
  });

  test('create, upsert, search, get, count, delete', async () => {
    await q.createCollection('shop', {
      vectors: { img: { dim: 4, metric: 'L2', index: 'HNSW', params: { M: 8 } } },
      attributes: { qty: 'INT64', price: { type: 'DOUBLE', indexed: true }, tags: 'STRING_LIST', ok: 'BOOL' },
    });
    assert.deepEqual(await q.listCollections(), ['shop']);
    const big = 9007199254740993n;  // 2^53 + 1: not a float64
    const seq = await q.upsert('shop', [
      { id: 'a', vectors: { img: [1, 0, 0, 0] }, attributes: { qty: big, price: 1.5, tags: ['x', 'y'], ok: true } },
      { id: 'b', vectors: { img: new Float32Array([0, 1, 0, 0]) }, attributes: { qty: 2, price: quiver.double(3) } },
      { id: 'c', vectors: { img: [0, 0, 1, 0] }, attributes: { qty: -3n } },
    ]);
    assert.equal(typeof seq, 'bigint');
    assert.equal(await q.count('shop'), 3n);
    assert.equal(await q.count('shop', 'qty > 9007199254740992'), 1n);

    const hits = await q.search('shop', [0.9, 0.1, 0, 0], { k: 2, outputAttributes: ['*'], withVectors: true });
    assert.deepEqual(hits.map((h) => h.id), ['a', 'b']);
    assert.equal(hits[0].attributes.qty, big);
    assert.deepEqual(hits[0].attributes.tags, ['x', 'y']);
    assert.ok(hits[0].vectors.img instanceof Float32Array);
    assert.deepEqual(Array.from(hits[0].vectors.img), [1, 0, 0, 0]);
    assert.ok(Math.abs(hits[0].score - 0.02) < 1e-6);

    const batch = await q.search('shop', [[1, 0, 0, 0], new Float32Array([0, 0, 1, 0])],
      { k: 1, filter: 'qty < 0 OR ok' });
    assert.deepEqual(batch.map((l) => l.map((h) => h.id)), [['a'], ['c']]);
    // An option without a wrapper of its own: SearchParams by name.
    const exact = await q.search('shop', [0, 1, 0, 0], { k: 1, params: { exact: true } });
    assert.equal(exact[0].id, 'b');

    const got = await q.get('shop', ['b', 'missing', 'a'], { withVectors: true });
    assert.deepEqual(got.map((p) => p.id).sort(), ['a', 'b']);
    const b = got.find((p) => p.id === 'b');
    assert.equal(b.attributes.qty, 2n);
    assert.equal(b.attributes.price, 3);
    assert.deepEqual(Array.from(b.vectors.img), [0, 1, 0, 0]);

    assert.equal(await q.delete('shop', { filter: 'qty < 0' }), 1n);
    assert.equal(await q.delete('shop', { ids: ['b'] }), 1n);
    assert.equal(await q.count('shop'), 1n);
    const info = await q.getCollection('shop');
    assert.equal(info.stats.point_count, '1');  // raw messages: 64-bit integers as strings
  });

  test('scroll pages through every point once; update changes parts, all or nothing', async () => {
    await q.createCollection('pages', { vectors: { v: { dim: 2, metric: 'L2' } }, attributes: { n: 'INT64', tag: 'STRING' } });
    const ids = Array.from({ length: 130 }, (_, i) => `p${String(i).padStart(3, '0')}`);
    await q.upsertBatches('pages', ids.map((id, i) => ({ id, vectors: { v: [i, -i] }, attributes: { n: i, tag: 't' } })),
      { batchSize: 50 });
    const seen = [];
    for await (const p of q.scroll('pages', { pageSize: 40, withVectors: true })) seen.push(p);
    assert.deepEqual(seen.map((p) => p.id), ids);
    assert.deepEqual(Array.from(seen[7].vectors.v), [7, -7]);
    const tail = [];
    for await (const p of q.scroll('pages', { filter: 'n >= 125' })) tail.push(p.id);
    assert.deepEqual(tail, ids.slice(125));

    const r = await q.update('pages', [
      { id: 'p001', setAttributes: { n: -1n, tag: null }, vectors: { v: [5, 5] } },
      { id: 'p002', removeAttributes: ['tag'] },
    ]);
    assert.equal(r.updated, 2);
    const [p1, p2] = await q.get('pages', ['p001', 'p002'], { withVectors: true });
    assert.deepEqual(p1.attributes, { n: -1n });
    assert.deepEqual(Array.from(p1.vectors.v), [5, 5]);
    assert.deepEqual(p2.attributes, { n: 2n });
    await assert.rejects(q.update('pages', [{ id: 'p003', setAttributes: { n: 0 } }, { id: 'nope', setAttributes: { n: 0 } }]),
      quiver.NotFoundError);
    assert.equal((await q.get('pages', ['p003']))[0].attributes.n, 3n);
  });

  test('GetPoints of 2,000 784-d vectors (past grpc-js default 4 MiB)', async () => {
    await q.createCollection('mnist', { vectors: { pixels: { dim: 784, metric: 'L2' } } });
    const n = 2000;
    const vec = (i) => Float32Array.from({ length: 784 }, (_, j) => ((i * 31 + j * 7) % 256) / 255);
    const points = Array.from({ length: n }, (_, i) => ({ id: `img-${i}`, vectors: { pixels: vec(i) } }));
    let calls = 0;
    assert.equal(await q.upsertBatches('mnist', points, { batchSize: 500, onProgress: () => { calls++; } }), n);
    assert.equal(calls, 4);
    const got = await q.get('mnist', points.map((p) => p.id), { withVectors: true });
    assert.equal(got.length, n);
    const byId = new Map(got.map((p) => [p.id, p]));
    for (const i of [0, 999, 1999]) assert.deepEqual(byId.get(`img-${i}`).vectors.pixels, vec(i));
  });

  test('errors are QuiverError subclasses with the status code', async () => {
    await assert.rejects(q.count('nope'), (e) => e instanceof quiver.NotFoundError &&
      e instanceof quiver.QuiverError && e.code === quiver.grpc.status.NOT_FOUND && /nope/.test(e.message));
    await assert.rejects(q.search('shop', [1, 0, 0, 0], { filter: 'qty >' }),
      (e) => e instanceof quiver.InvalidArgumentError && /filter/.test(e.message));
    await assert.rejects(q.createCollection('shop', { vectors: { v: { dim: 2, metric: 'L2' } } }),
      quiver.AlreadyExistsError);
    await assert.rejects(q.search('shop', [1, 0, 0, 0], { noSuchOption: 1 }), /SearchRequest has no field no_such_option/);
    await assert.rejects(q.call('points', 'NoSuchRpc', {}), TypeError);
  });

  test('aliases: create, switch, list, delete; calls through an alias', async () => {
    await q.createCollection('al_v1', { vectors: { v: { dim: 2, metric: 'L2' } } });
    await q.createCollection('al_v2', { vectors: { v: { dim: 2, metric: 'L2' } } });
    await q.upsert('al_v1', [{ id: 'a', vectors: { v: [1, 0] } }]);
    await q.upsert('al_v2', [{ id: 'b', vectors: { v: [1, 0] } }, { id: 'c', vectors: { v: [0, 1] } }]);
    const seq = await q.createAlias('al', 'al_v1');
    assert.equal(typeof seq, 'bigint');
    assert.equal(await q.count('al'), 1n);
    assert.equal((await q.getCollection('al')).name, 'al_v1');
    assert.ok(await q.switchAlias('al', 'al_v2') > seq);
    assert.deepEqual((await q.search('al', [1, 0], { k: 1 })).map((h) => h.id), ['b']);
    assert.deepEqual(await q.listAliases('al_v2'), [{ alias: 'al', collection: 'al_v2' }]);
    await assert.rejects(q.createAlias('al_v1', 'al_v2'), quiver.AlreadyExistsError);
    await assert.rejects(q.switchAlias('no_alias', 'al_v2'), quiver.NotFoundError);
    await assert.rejects(q.dropCollection('al_v2'),
      (e) => e instanceof quiver.FailedPreconditionError && /aliases \(al\)/.test(e.message));
    await q.deleteAlias('al');
    assert.deepEqual(await q.listAliases('al_v2'), []);
    await assert.rejects(q.count('al'), quiver.NotFoundError);
  });

  test('updateCollection adds attributes and vector fields, drops one, changes an index', async () => {
    await q.createCollection('evo', { vectors: { v: { dim: 2, metric: 'L2' } }, attributes: { n: 'INT64' } });
    await q.upsert('evo', [{ id: 'a', vectors: { v: [1, 0] }, attributes: { n: 1 } }]);
    let info = await q.updateCollection('evo', {
      attributes: { n: { indexed: true }, tag: 'string' },
      addVectors: { w: { dim: 3, metric: 'IP', index: 'HNSW' } },
      indexes: { v: { type: 'IVF_FLAT', params: { nlist: 4 } } },
    });
    assert.deepEqual(info.schema.vectors.map((f) => [f.name, f.optional, f.index.type]),
      [['v', false, 'IVF_FLAT'], ['w', true, 'HNSW']]);
    assert.deepEqual(info.schema.attributes.map((a) => [a.name, a.indexed]), [['n', true], ['tag', false]]);
    await q.upsert('evo', [{ id: 'b', vectors: { v: [0, 1], w: [1, 0, 0] } }]);
    assert.deepEqual((await q.search('evo', [1, 0, 0], { field: 'w', k: 5 })).map((h) => h.id), ['b']);
    info = await q.updateCollection('evo', { dropVectors: ['v'] });
    assert.deepEqual(info.schema.vectors.map((f) => f.name), ['w']);
    await assert.rejects(q.updateCollection('evo', { dropVectors: ['w'] }), quiver.FailedPreconditionError);
  });

  test('sparse vector fields and text attributes', async () => {
    await q.createCollection('kw', {
      vectors: { v: { dim: 2, metric: 'L2' } },
      attributes: { body: { type: 'string', text: true }, n: 'INT64' },
      sparseVectors: ['sp'],
    });
    await q.upsert('kw', [
      { id: 'a', vectors: { v: [0, 0] }, attributes: { body: 'Searching the index', n: 1 },
        sparseVectors: { sp: new Map([[3, 1], [10, 2]]) } },
      { id: 'b', vectors: { v: [1, 1] }, attributes: { body: 'index of indexes', n: 2 },
        sparseVectors: { sp: { indices: [10], values: [0.5] } } },
      { id: 'c', vectors: { v: [2, 2] }, attributes: { n: 3 } },
    ]);
    const hits = await q.searchSparse('kw', 'sp', { 10: 1, 3: 1 }, { k: 5, withVectors: true });
    assert.deepEqual(hits.map((h) => [h.id, h.score]), [['a', 3], ['b', 0.5]]);
    assert.deepEqual([...hits[0].sparseVectors.sp], [[3, 1], [10, 2]]);
    const lists = await q.searchSparse('kw', 'sp', [new Map([[3, 1]]), { 10: 1 }], { filter: 'n >= 2' });
    assert.deepEqual(lists.map((l) => l.map((h) => h.id)), [[], ['b']]);
    assert.deepEqual((await q.searchText('kw', 'body', 'indexed')).map((h) => h.id), ['b', 'a']);
    await q.update('kw', [{ id: 'c', sparseVectors: { sp: { 3: 9 } } }, { id: 'a', removeVectors: ['sp'] }]);
    assert.deepEqual((await q.searchSparse('kw', 'sp', { 3: 1 })).map((h) => h.id), ['c']);
    const info = await q.updateCollection('kw', { addSparseVectors: ['sp2'] });
    assert.deepEqual(info.schema.sparse_vectors.map((f) => f.name), ['sp', 'sp2']);
    await assert.rejects(q.searchText('kw', 'n', 'x'), quiver.InvalidArgumentError);
  });

  test('hybrid and multi-stage search', async () => {
    await q.createCollection('hy', {
      vectors: { v: { dim: 2, metric: 'L2' } },
      attributes: { body: { type: 'string', text: true } },
      sparseVectors: ['sp'],
    });
    await q.upsert('hy', [
      { id: 'a', vectors: { v: [0, 0] }, attributes: { body: 'running fast' }, sparseVectors: { sp: { 1: 1 } } },
      { id: 'b', vectors: { v: [1, 1] }, attributes: { body: 'they run' }, sparseVectors: { sp: { 1: 3 } } },
      { id: 'c', vectors: { v: [5, 5] }, attributes: { body: 'walking' }, sparseVectors: { sp: { 2: 1 } } },
    ]);
    let hits = await q.searchHybrid('hy', [{ field: 'body', text: 'run' }, { field: 'v', vector: [5, 5], k: 3 }],
      { k: 3, fusion: 'dbsf' });
    assert.deepEqual(hits.map((h) => h.id).sort(), ['a', 'b', 'c']);
    // BM25's candidates (a, b) re-scored by the sparse field, then by L2 to (0, 0).
    hits = await q.searchHybrid('hy', [{ field: 'body', text: 'run' }], {
      k: 1, stages: [{ field: 'sp', sparseVector: { 1: 1 }, limit: 2 }, { field: 'v', vector: [0, 0] }] });
    assert.deepEqual(hits.map((h) => [h.id, h.score]), [['a', 0]]);
    hits = await q.searchHybrid('hy', [{ field: 'body', text: 'run' }], {
      k: 2, stages: [{ field: 'sp', sparseVector: new Map([[1, 1]]) }] });
    assert.deepEqual(hits.map((h) => [h.id, h.score]), [['b', 3], ['a', 1]]);
    await assert.rejects(q.searchHybrid('hy', [{ field: 'body', text: 'run' }], {
      k: 2, stages: [{ field: 'v', vector: [0, 0], limit: 1 }] }), quiver.InvalidArgumentError);
    await assert.rejects(q.searchHybrid('hy', [{ field: 'v', vector: [0, 0], text: 'x' }]), TypeError);
  });

  test('sparse fields with the IDF modifier', async () => {
    await q.createCollection('idf', { vectors: {}, sparseVectors: [{ name: 'bm', modifier: 'idf' }, 'raw'] });
    await q.upsert('idf', [{ 1: 1 }, { 2: 1 }, { 2: 1 }].map((v, i) => ({ id: 'abc'[i], sparseVectors: { bm: v, raw: v } })));
    const hits = await q.searchSparse('idf', 'bm', { 1: 1, 2: 1 }, { k: 3 });
    assert.deepEqual(hits.map((h) => h.id), ['a', 'b', 'c']);
    assert.ok(Math.abs(hits[0].score - Math.log(1 + 2.5 / 1.5)) < 1e-5);
    const info = await q.getCollection('idf');
    assert.deepEqual(info.schema.sparse_vectors.map((f) => f.modifier), ['IDF', 'SPARSE_MODIFIER_NONE']);
    await assert.rejects(q.createCollection('idf2', { vectors: {}, sparseVectors: [{ name: 'x', modifier: 'bm42' }] }), TypeError);
  });

  test('diversity-aware search', async () => {
    await q.createCollection('dv', { vectors: { v: { dim: 2, metric: 'L2' } } });
    await q.upsert('dv', [[0, 0], [0.01, 0], [0, 0.01], [1, 0]].map((v, i) => ({ id: 'abcd'[i], vectors: { v } })));
    assert.deepEqual((await q.search('dv', [0, 0], { k: 2 })).map((h) => h.id), ['a', 'b']);
    assert.deepEqual((await q.search('dv', [0, 0], { k: 2, diversity: { lambda: 0.3 } })).map((h) => h.id), ['a', 'd']);
    assert.deepEqual((await q.search('dv', [0, 0], { k: 2, diversity: { lambda: 1, fetchK: 4 } })).map((h) => h.id), ['a', 'b']);
    await assert.rejects(q.search('dv', [0, 0], { k: 2, diversity: { lambda: 2 } }), quiver.InvalidArgumentError);
  });

  test('target recall', async () => {
    await q.createCollection('tr', { vectors: { v: { dim: 2, metric: 'L2', index: 'HNSW' } } });
    await q.upsert('tr', [[0, 0], [1, 0], [2, 0]].map((v, i) => ({ id: 'abc'[i], vectors: { v } })));
    // A growing segment is scanned exactly: the exact answer, predicted 1.
    const hits = await q.search('tr', [0.9, 0], { k: 2, params: { targetRecall: 0.9 } });
    assert.deepEqual(hits.map((h) => h.id), ['b', 'a']);
    const resp = await q.searchRaw({ collection: 'tr', k: 2, vectors: [{ values: [0.9, 0] }], params: { target_recall: 0.9 } });
    assert.equal(resp.results[0].predicted_recall, 1);
    assert.equal(resp.results[0].exhaustive, true);
    await assert.rejects(q.search('tr', [0, 0], { params: { targetRecall: 0.9, ef: 64 } }), quiver.InvalidArgumentError);
    await assert.rejects(q.search('tr', [0, 0], { params: { targetRecall: 2 } }), quiver.InvalidArgumentError);
  });

  test('any RPC through call(), including ones without a wrapper', async () => {
    const resp = await q.call('points', 'CountPoints', { collection: 'shop', filter: '' });
    assert.equal(resp.count, '1');
    const verify = await q.call('collections', 'VerifyCollection', { name: 'shop', seed: 18446744073709551615n.toString() });
    assert.equal(verify.defects_total, '0');
  });

  test('the typings compile against a typed program', () => {
    const tsc = path.join(__dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc');
    execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--target', 'es2020', '--module', 'commonjs',
      '--types', 'node', path.join(__dirname, 'typed.ts')], { stdio: 'inherit' });
  });
});

describe('API keys', () => {
  test('no key: UNAUTHENTICATED; the key: allowed; a read key: PERMISSION_DENIED on writes', async () => {
    const admin = 'qk_node_admin_key';
    const reader = 'qk_node_read_key';
    const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');
    const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'quiver-node-keys-'));
    const keys = path.join(dir, 'keys');
    fs.writeFileSync(keys, `${sha(admin)} admin\n${sha(reader)} read\n`);
    const server = await startQuiverd(['--api-keys-file', keys], { makeClient: (a) => client(a, { timeoutMs: 2000 }) });
    const anon = client(server.address, { apiKey: '' });
    const q = client(server.address, { apiKey: admin });
    const r = client(server.address, { apiKey: reader });
    try {
      await assert.rejects(anon.listCollections(), quiver.UnauthenticatedError);
      await q.createCollection('k', { vectors: { v: { dim: 2, metric: 'IP' } } });
      assert.deepEqual(await r.listCollections(), ['k']);
      await assert.rejects(r.upsert('k', [{ id: 'x', vectors: { v: [1, 2] } }]), quiver.PermissionDeniedError);
    } finally {
      anon.close(); q.close(); r.close();
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
