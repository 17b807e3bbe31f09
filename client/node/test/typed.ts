// Compiled by client.test.js with tsc --strict --noEmit: the typings
// describe the API as the tests use it (never run).
import { QuiverClient, NotFoundError, Hit, Point, AliasInfo, double } from '..';

async function main(): Promise<void> {
  const q = new QuiverClient({ address: '127.0.0.1:50051', apiKey: 'k', timeoutMs: 1000 });
  await q.createCollection('c', { vectors: { v: { dim: 2, metric: 'L2', index: 'HNSW' } }, attributes: { n: 'INT64' } });
  const seq: bigint = await q.upsert('c', [{ id: 'a', vectors: { v: new Float32Array([1, 2]) }, attributes: { n: 1n, d: double(2) } }]);
  const hits: Hit[] = await q.search('c', [1, 2], { k: 1, filter: 'n = 1' });
  const lists: Hit[][] = await q.search('c', [[1, 2], [3, 4]]);
  const pts: Point[] = await q.get('c', ['a'], { withVectors: true });
  const n: bigint = await q.count('c');
  const v: Float32Array = pts[0].vectors.v;
  const aliasSeq: bigint = await q.createAlias('live', 'c');
  await q.switchAlias('live', 'c');
  const aliases: AliasInfo[] = await q.listAliases('c');
  await q.deleteAlias(aliases[0].alias);
  await q.updateCollection('c', { attributes: { n: { indexed: true } }, addVectors: { w: { dim: 3, metric: 'IP' } },
    dropVectors: ['v'], indexes: { w: { type: 'HNSW', params: { M: 16 } } } });
  console.log(aliasSeq);
  await q.createCollection('t', { vectors: {}, attributes: { body: { type: 'string', text: { language: 'french' } } },
    sparseVectors: ['sp'] });
  await q.upsert('t', [{ id: 'x', sparseVectors: { sp: new Map([[1, 0.5]]) }, attributes: { body: 'mots' } }]);
  const sparseHits: Hit[] = await q.searchSparse('t', 'sp', { indices: [1], values: [1] });
  const textLists: Hit[][] = await q.searchText('t', 'body', ['mot', 'autre'], { k: 3 });
  const staged: Hit[] = await q.searchHybrid('t', [{ field: 'body', text: 'mot', k: 20 }, { field: 'sp', sparseVector: { 1: 1 } }],
    { k: 5, fusion: 'dbsf', candidates: 10, stages: [{ field: 'sp', sparseVector: new Map([[1, 1]]), limit: 5 }] });
  console.log(sparseHits, textLists, staged);
  try {
    await q.dropCollection('c');
  } catch (e) {
    if (e instanceof NotFoundError) console.log(e.code, e.message);
  }
  console.log(seq, hits, lists, n, v);
  q.close();
}
void main;
