'use strict';
// Quiver's Node.js client: a Promise API over the gRPC services, loaded at
// run time from proto/ with @grpc/proto-loader (so an RPC added to a .proto
// is callable at once through client.call), with:
// - every 64-bit integer exact: attribute values and counts come back as
//   bigint, raw messages carry int64/uint64 as decimal strings, and a bigint
//   (or a decimal string) is accepted wherever an int64 goes in;
// - message size limits raised to the server's (64 MiB by default), where
//   grpc-js would stop at 4 MiB;
// - one Error class per gRPC status code, all extending QuiverError.
//
// Wrapping an RPC added to the API is a few lines in the pattern below:
//   async count(collection, filter = '') {
//     return BigInt((await this.call('points', 'CountPoints', { collection, filter })).count);
//   }
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const DEFAULT_ADDRESS = '127.0.0.1:50051';
const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

// ------------------------------------------------------------------ errors
class QuiverError extends Error {
  constructor(message, code, retryAfterMs) {
    super(message);
    this.name = this.constructor.name;
    this.code = code;  // the gRPC status code (a number, as grpc.status)
    this.retryAfterMs = retryAfterMs;  // the server's retry hint, or undefined
  }
}

const ERRORS = {};
const STATUS_NAMES = Object.keys(grpc.status).filter((k) => k !== 'OK' && Number.isNaN(Number(k)));
for (const name of STATUS_NAMES) {
  const className = name.toLowerCase().replace(/(^|_)([a-z])/g, (_, __, c) => c.toUpperCase()) + 'Error';
  const code = grpc.status[name];
  const cls = { [className]: class extends QuiverError {
    constructor(message, retryAfterMs) { super(message, code, retryAfterMs); }
  } }[className];
  ERRORS[code] = cls;
  exports[className] = cls;
}

function toQuiverError(err) {
  let retryAfterMs;
  if (err.metadata) {
    const v = err.metadata.get('retry-after-ms');
    if (v.length > 0) retryAfterMs = Number(v[0]);
  }
  const Cls = ERRORS[err.code] || QuiverError;
  const e = Cls === QuiverError ? new QuiverError(err.details || err.message, err.code, retryAfterMs)
    : new Cls(err.details || err.message, retryAfterMs);
  return e;
}

// -------------------------------------------------------------- protos
function protoDir() {
  const candidates = [process.env.QUIVER_PROTO_DIR, path.join(__dirname, 'proto'),
    path.join(__dirname, '..', '..', 'proto')];
  for (const d of candidates) {
    if (d && fs.existsSync(path.join(d, 'quiver', 'v1'))) return d;
  }
  throw new Error('quiver-client: cannot find the .proto files (set QUIVER_PROTO_DIR)');
}

let api;
function loadApi() {
  if (api) return api;
  const dir = protoDir();
  const files = fs.readdirSync(path.join(dir, 'quiver', 'v1'))
    .filter((f) => f.endsWith('.proto')).sort().map((f) => `quiver/v1/${f}`);
  files.push('grpc/health/v1/health.proto');
  const def = protoLoader.loadSync(files, { ...LOADER_OPTIONS, includeDirs: [dir] });
  api = grpc.loadPackageDefinition(def);
  api.definition = def;
  return api;
}

// Throws for a field `request` sets that message type `typeName` lacks:
// protobufjs would drop it silently, and a misspelt option must not pass.
function checkFields(typeName, request) {
  const type = loadApi().definition[typeName];
  const known = new Set(type.type.field.map((f) => f.name));
  for (const k of Object.keys(request)) {
    if (!known.has(k)) {
      throw new TypeError(`${typeName} has no field ${k} (fields: ${[...known].sort().join(', ')})`);
    }
  }
  return request;
}

// ---------------------------------------------------------- conversions
// An attribute value for the API: bigint -> int64; a number -> int64 when it
// is a safe integer (the server takes an int64 for a DOUBLE attribute too),
// else double; boolean, string, string[]; a Value object as it is
// (double(x) makes one).
function toValue(v) {
  switch (typeof v) {
    case 'bigint': return { int_value: v.toString() };
    case 'number': return Number.isSafeInteger(v) ? { int_value: String(v) } : { double_value: v };
    case 'boolean': return { bool_value: v };
    case 'string': return { string_value: v };
    default: break;
  }
  if (Array.isArray(v) && v.every((s) => typeof s === 'string')) {
    return { string_list_value: { values: v } };
  }
  if (v && typeof v === 'object') return v;
  throw new TypeError(`attribute value ${String(v)} is not a bigint, number, boolean, string or string[]`);
}

function fromValue(v) {
  switch (v.kind) {
    case 'int_value': return BigInt(v.int_value);
    case 'double_value': return v.double_value;
    case 'bool_value': return v.bool_value;
    case 'string_value': return v.string_value;
    case 'string_list_value': return v.string_list_value.values.slice();
    default: return null;
  }
}

const double = (x) => ({ double_value: Number(x) });

function mapValues(obj, fn) {
  const out = {};
  for (const [k, v] of Object.entries(obj || {})) out[k] = fn(v);
  return out;
}

const toVector = (v) => ({ values: Array.from(v) });
const fromVector = (v) => Float32Array.from(v.values);
// A sparse vector: a Map or object { index: value }, or { indices, values }.
function toSparse(s) {
  if (s instanceof Map) return { indices: Array.from(s.keys(), Number), values: Array.from(s.values()) };
  if (s && s.indices !== undefined) return { indices: Array.from(s.indices, Number), values: Array.from(s.values) };
  return { indices: Object.keys(s).map(Number), values: Object.values(s).map(Number) };
}
// -> Map(index -> value), indexes ascending.
const fromSparse = (s) => new Map(s.indices.map((i, j) => [i, s.values[j]]));

// The one query of a FieldQuery or SearchStage: vector, multiVector,
// sparseVector or text.
function fieldQuery(q, what) {
  const given = ['vector', 'multiVector', 'sparseVector', 'text'].filter((kind) => q[kind] !== undefined);
  if (given.length !== 1) {
    throw new TypeError(`${what}: give exactly one of vector, multiVector, sparseVector, text`);
  }
  switch (given[0]) {
    case 'vector': return { vector: toVector(q.vector) };
    case 'multiVector': return { multi_vector: { vectors: Array.from(q.multiVector, toVector) } };
    case 'sparseVector': return { sparse_vector: toSparse(q.sparseVector) };
    default: return { text: String(q.text) };
  }
}

// A sparse field: its name, or { name, modifier: 'idf' | 'none' }.
function sparseField(f) {
  if (typeof f === 'string') return { name: f };
  const modifier = String(f.modifier || 'none').toUpperCase();
  if (modifier !== 'IDF' && modifier !== 'NONE') {
    throw new TypeError(`sparse field ${f.name}: modifier must be 'idf' or 'none', got ${f.modifier}`);
  }
  return { name: f.name, modifier: modifier === 'IDF' ? 'IDF' : 'SPARSE_MODIFIER_NONE' };
}

function toPoint(p) {
  const point = { id: String(p.id), vectors: mapValues(p.vectors, toVector), attributes: {} };
  for (const [k, v] of Object.entries(p.attributes || {})) {
    if (v !== null && v !== undefined) point.attributes[k] = toValue(v);
  }
  if (p.multiVectors) {
    point.multi_vectors = mapValues(p.multiVectors, (set) => ({ vectors: Array.from(set, toVector) }));
  }
  if (p.sparseVectors) point.sparse_vectors = mapValues(p.sparseVectors, toSparse);
  return point;
}

function fromPoint(p) {
  const out = { id: p.id, vectors: mapValues(p.vectors, fromVector), attributes: mapValues(p.attributes, fromValue) };
  if (p.multi_vectors && Object.keys(p.multi_vectors).length > 0) {
    out.multiVectors = mapValues(p.multi_vectors, (mv) => mv.vectors.map(fromVector));
  }
  if (p.sparse_vectors && Object.keys(p.sparse_vectors).length > 0) {
    out.sparseVectors = mapValues(p.sparse_vectors, fromSparse);
  }
  return out;
}

function fromHit(h) {
  const hit = { id: h.id, score: h.score, attributes: mapValues(h.attributes, fromValue),
    vectors: mapValues(h.vectors, fromVector) };
  if (h.sparse_vectors && Object.keys(h.sparse_vectors).length > 0) {
    hit.sparseVectors = mapValues(h.sparse_vectors, fromSparse);
  }
  return hit;
}

// camelCase option names -> the messages' snake_case field names, bigints
// -> decimal strings (how protobufjs takes an exact int64).
function requestFields(options) {
  const convert = (v) => {
    if (typeof v === 'bigint') return v.toString();
    if (Array.isArray(v)) return v.map(convert);
    if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) {
      const out = {};
      for (const [k, x] of Object.entries(v)) {
        if (x !== undefined) out[k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = convert(x);
      }
      return out;
    }
    return v;
  };
  return convert(options || {});
}

function vectorField(name, spec) {
  const { index, params, ...rest } = spec;
  const f = { name, ...requestFields(rest) };
  if (index || params) f.index = { type: index || '', params: mapValues(params, String) };
  return f;
}

function attributeField(name, spec) {
  const s = typeof spec === 'string' ? { type: spec } : spec;
  // (An update may leave the type out: the attribute keeps its own.)
  const typed = s.type === undefined ? { ...s } : { ...s, type: String(s.type).toUpperCase() };
  // text: true, or TextOptions ({ language, stopWords, k1, b }).
  if (typed.text === true) typed.text = {};
  if (typed.text === false) delete typed.text;
  return { name, ...requestFields(typed) };
}

const isVector = (v) => ArrayBuffer.isView(v) || (Array.isArray(v) && (v.length === 0 || typeof v[0] === 'number'));

// ---------------------------------------------------------------- client
class QuiverClient {
  // options: address ($QUIVER_ADDR or 127.0.0.1:50051), apiKey
  // ($QUIVER_API_KEY), tls (true, or {ca, cert, key} as Buffers or PEM
  // strings), serverName, timeoutMs (per call, default 60000; 0: none),
  // maxMessageBytes (default 64 MiB), channelOptions.
  constructor(options = {}) {
    this.address = options.address || process.env.QUIVER_ADDR || DEFAULT_ADDRESS;
    this.apiKey = options.apiKey !== undefined ? options.apiKey : (process.env.QUIVER_API_KEY || '');
    this.timeoutMs = options.timeoutMs !== undefined ? options.timeoutMs : 60000;
    const max = options.maxMessageBytes || 64 * 1024 * 1024;
    const channelOptions = { 'grpc.max_receive_message_length': max, 'grpc.max_send_message_length': max,
      ...(options.channelOptions || {}) };
    if (options.serverName) channelOptions['grpc.ssl_target_name_override'] = options.serverName;
    let creds = grpc.credentials.createInsecure();
    if (options.tls) {
      const t = options.tls === true ? {} : options.tls;
      const buf = (x) => (x === undefined || x === null ? null : Buffer.from(x));
      creds = grpc.credentials.createSsl(buf(t.ca), buf(t.key), buf(t.cert));
    }
    const v1 = loadApi().quiver.v1;
    const first = new v1.CollectionService(this.address, creds, channelOptions);
    const shared = { ...channelOptions, channelOverride: first.getChannel() };
    // The generated service clients, for RPCs without a wrapper here.
    this.stubs = {
      collections: first,
      points: new v1.PointService(this.address, creds, shared),
      search: new v1.SearchService(this.address, creds, shared),
      snapshots: new v1.SnapshotService(this.address, creds, shared),
      health: new (loadApi().grpc.health.v1.Health)(this.address, creds, shared),
    };
  }

  close() { this.stubs.collections.close(); }

  // Calls a unary RPC by service key and method name (e.g. 'points',
  // 'ScrollPoints') with the API key and deadline; resolves with the
  // response message, rejects with a QuiverError subclass.
  call(service, method, request, { timeoutMs } = {}) {
    const stub = this.stubs[service];
    if (!stub || typeof stub[method] !== 'function') {
      return Promise.reject(new TypeError(`no RPC ${service}.${method}`));
    }
    const md = new grpc.Metadata();
    if (this.apiKey) md.set('authorization', `Bearer ${this.apiKey}`);
    const ms = timeoutMs !== undefined ? timeoutMs : this.timeoutMs;
    const callOptions = ms ? { deadline: new Date(Date.now() + ms) } : {};
    return new Promise((resolve, reject) => {
      stub[method](request, md, callOptions, (err, resp) => (err ? reject(toQuiverError(err)) : resolve(resp)));
    });
  }

  async health(service = '') {
    return (await this.call('health', 'Check', { service })).status;
  }

  // spec: { vectors: { emb: { dim, metric, index?, params?, storage? } },
  //         attributes: { price: 'DOUBLE', tag: { type: 'STRING', indexed: true } } }
  async createCollection(name, spec) {
    const schema = {
      vectors: Object.entries(spec.vectors || {}).map(([n, s]) => vectorField(n, s)),
      attributes: Object.entries(spec.attributes || {}).map(([n, s]) => attributeField(n, s)),
      sparse_vectors: Array.from(spec.sparseVectors || [], sparseField),
    };
    return (await this.call('collections', 'CreateCollection', { name, schema })).collection;
  }

  // Changes the schema in one all-or-nothing request; resolves with the new
  // collection info. changes: { attributes: new ones, or existing ones with
  // their index flags as they should be ({ n: { indexed: true } });
  // addVectors: new (optional) vector fields, as in createCollection;
  // dropVectors: names; indexes: { emb: 'HNSW' | { type, params } } }.
  async updateCollection(name, changes = {}) {
    const req = {
      name,
      attributes: Object.entries(changes.attributes || {}).map(([n, s]) => attributeField(n, s)),
      add_vectors: Object.entries(changes.addVectors || {}).map(([n, s]) => vectorField(n, s)),
      drop_vectors: Array.from(changes.dropVectors || []),
      add_sparse_vectors: Array.from(changes.addSparseVectors || [], sparseField),
      vectors: Object.entries(changes.indexes || {}).map(([field, ix]) => {
        const { type, params } = typeof ix === 'string' ? { type: ix } : ix;
        return { field, index: { type, params: mapValues(params, String) } };
      }),
    };
    return (await this.call('collections', 'UpdateCollection', req)).collection;
  }

  async getCollection(name) { return (await this.call('collections', 'GetCollection', { name })).collection; }

  async listCollections() {
    return (await this.call('collections', 'ListCollections', {})).collections.map((c) => c.name);
  }

  async dropCollection(name) { return BigInt((await this.call('collections', 'DropCollection', { name })).sequence); }

  // Aliases: a second name for a collection, taken by every call that takes
  // a collection name; switchAlias re-points it atomically. The changes
  // resolve with their sequence number.
  async createAlias(alias, collection) {
    return BigInt((await this.call('collections', 'CreateAlias', { alias, collection })).sequence);
  }

  async switchAlias(alias, collection) {
    return BigInt((await this.call('collections', 'SwitchAlias', { alias, collection })).sequence);
  }

  async deleteAlias(alias) { return BigInt((await this.call('collections', 'DeleteAlias', { alias })).sequence); }

  // [{ alias, collection }] sorted by alias; only `collection`'s when given.
  async listAliases(collection = '') {
    const resp = await this.call('collections', 'ListAliases', { collection });
    return resp.aliases.map((a) => ({ alias: a.alias, collection: a.collection }));
  }

  // points: [{ id, vectors: { emb: Float32Array | number[] }, attributes: {...}, multiVectors? }];
  // one atomic write. Resolves with its sequence number.
  async upsert(collection, points) {
    const resp = await this.call('points', 'UpsertPoints', { collection, points: Array.from(points, toPoint) });
    return BigInt(resp.sequence);
  }

  // Many points as upserts of at most batchSize points each (each batch
  // atomic); onProgress(done) after each. Resolves with the points written.
  async upsertBatches(collection, points, { batchSize = 1000, onProgress } = {}) {
    let batch = [];
    let done = 0;
    const flush = async () => {
      await this.upsert(collection, batch);
      done += batch.length;
      batch = [];
      if (onProgress) onProgress(done);
    };
    for (const p of points) {
      batch.push(p);
      if (batch.length >= batchSize) await flush();
    }
    if (batch.length > 0) await flush();
    return done;
  }

  async get(collection, ids, { withVectors = false, attributes = [] } = {}) {
    const resp = await this.call('points', 'GetPoints', { collection, ids, with_vectors: withVectors, attributes });
    return resp.points.map(fromPoint);
  }

  async delete(collection, { ids = [], filter = '' } = {}) {
    return BigInt((await this.call('points', 'DeletePoints', { collection, ids, filter })).deleted_count);
  }

  async count(collection, filter = '') {
    return BigInt((await this.call('points', 'CountPoints', { collection, filter })).count);
  }

  // Every point (matching filter) in id order, fetched page by page with
  // ScrollPoints; a point that exists throughout comes exactly once while
  // writes go on. for await (const p of q.scroll('c', { pageSize: 500 })).
  async *scroll(collection, { filter = '', pageSize = 0, withVectors = false, attributes = [] } = {}) {
    let cursor = '';
    do {
      const resp = await this.call('points', 'ScrollPoints', {
        collection, filter, page_size: pageSize, cursor, with_vectors: withVectors, attributes,
      });
      for (const p of resp.points) yield fromPoint(p);
      cursor = resp.next_cursor;
    } while (cursor);
  }

  // Partial updates (UpdatePoints), all applied or none: [{ id,
  // setAttributes: { name: value | null (removes) }, removeAttributes,
  // vectors: { field: vector }, removeVectors }]. A missing id rejects with
  // NotFoundError unless upsert. Resolves with { sequence, updated, created }.
  async update(collection, updates, { upsert = false } = {}) {
    const resp = await this.call('points', 'UpdatePoints', {
      collection,
      upsert,
      updates: Array.from(updates, (u) => ({
        id: String(u.id),
        set_attributes: mapValues(u.setAttributes, (v) => (v === null || v === undefined ? {} : toValue(v))),
        remove_attributes: u.removeAttributes || [],
        vectors: mapValues(u.vectors, toVector),
        sparse_vectors: mapValues(u.sparseVectors, toSparse),
        remove_vectors: u.removeVectors || [],
      })),
    });
    return { sequence: BigInt(resp.sequence), updated: resp.updated_count, created: resp.created_count };
  }

  // One query vector -> its hits, best first; an array of vectors -> one
  // list per vector. options: k (10), field, filter, outputAttributes,
  // withVectors, params ({ ef, nprobe, exact, refineFactor, filterStrategy,
  // targetRecall }),
  // and any other SearchRequest field by name.
  async search(collection, vectors, options = {}) {
    const single = isVector(vectors);
    const queries = single ? [vectors] : Array.from(vectors);
    const request = { k: 10, ...requestFields(options), collection, vectors: queries.map(toVector) };
    checkFields('quiver.v1.SearchRequest', request);
    if (request.params) checkFields('quiver.v1.SearchParams', request.params);
    const resp = await this.searchRaw(request);
    const lists = resp.results.map((r) => r.hits.map(fromHit));
    return single ? lists[0] : lists;
  }

  // A sparse vector field's k best points by dot product: one query (a Map,
  // { index: value } or { indices, values }) -> its hits; an array of
  // queries -> one list per query. options as for search (field required).
  async searchSparse(collection, field, queries, options = {}) {
    const single = !Array.isArray(queries);
    const request = { k: 10, ...requestFields(options), collection, field,
      sparse_vectors: (single ? [queries] : queries).map(toSparse) };
    checkFields('quiver.v1.SearchRequest', request);
    const resp = await this.searchRaw(request);
    const lists = resp.results.map((r) => r.hits.map(fromHit));
    return single ? lists[0] : lists;
  }

  // Full-text (BM25) search of a text attribute: a string -> its hits; an
  // array of strings -> one list per query.
  async searchText(collection, field, queries, options = {}) {
    const single = typeof queries === 'string';
    const request = { k: 10, ...requestFields(options), collection, field,
      texts: single ? [queries] : Array.from(queries) };
    checkFields('quiver.v1.SearchRequest', request);
    const resp = await this.searchRaw(request);
    const lists = resp.results.map((r) => r.hits.map(fromHit));
    return single ? lists[0] : lists;
  }

  // Hybrid search, one query: each of `queries` searches one field,
  // { field, and one of vector, multiVector (an array of vectors),
  // sparseVector or text, optional k, weight, params }, their lists fused
  // (options.fusion 'rrf', 'weighted' or 'dbsf'). Multi-stage search:
  // options.stages, in order, each { field, one query as above, limit }
  // re-scoring the candidates exactly by its field; options.candidates,
  // how many of the fused ranking the first stage takes (0: all).
  async searchHybrid(collection, queries, options = {}) {
    const { fusion = 'rrf', stages = [], ...rest } = options;
    const method = String(fusion).toUpperCase();
    if (!['RRF', 'WEIGHTED', 'DBSF'].includes(method)) {
      throw new TypeError(`fusion must be rrf, weighted or dbsf, got ${fusion}`);
    }
    const request = { k: 10, ...requestFields(rest), collection, fusion: method,
      field_queries: Array.from(queries, (q, i) => {
        const { field, k = 0, weight = 0, params } = q;
        return { field, k, weight, ...(params ? { params: requestFields(params) } : {}),
          ...fieldQuery(q, `queries[${i}]`) };
      }),
      stages: Array.from(stages, (st, i) => ({ field: st.field, limit: st.limit || 0,
        ...fieldQuery(st, `stages[${i}]`) })) };
    checkFields('quiver.v1.SearchRequest', request);
    const resp = await this.searchRaw(request);
    return resp.results[0].hits.map(fromHit);
  }

  // Any SearchRequest (hybrid, multi-vector, explain); the raw response.
  searchRaw(request) { return this.call('search', 'Search', request); }

  async createSnapshot(name, collection = '', { timeoutMs = 0 } = {}) {
    return (await this.call('snapshots', 'CreateSnapshot', { name, collection }, { timeoutMs })).snapshot;
  }

  async listSnapshots() { return (await this.call('snapshots', 'ListSnapshots', {})).snapshots; }

  async deleteSnapshot(name) { await this.call('snapshots', 'DeleteSnapshot', { name }); }
}

exports.QuiverClient = QuiverClient;
exports.QuiverError = QuiverError;
exports.DEFAULT_ADDRESS = DEFAULT_ADDRESS;
exports.double = double;
exports.requestFields = requestFields;
exports.checkFields = checkFields;
exports.grpc = grpc;
