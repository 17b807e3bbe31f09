// Typings of quiver-client (index.js). 64-bit integers are bigint in the
// wrappers' results and decimal strings in raw messages; nothing 64-bit is
// ever a lossy number.

export type AttributeValue = bigint | number | boolean | string | string[];
/** A protobuf quiver.v1.Value, as double() makes. */
export interface ValueMessage {
  int_value?: string; double_value?: number; bool_value?: boolean; string_value?: string;
  string_list_value?: { values: string[] };
}
export type VectorLike = Float32Array | ArrayLike<number>;
/** A sparse vector: index -> value, or parallel arrays. */
export type SparseLike = Map<number, number> | Record<number, number> |
  { indices: ArrayLike<number>; values: ArrayLike<number> };

export interface PointInput {
  id: string;
  vectors?: Record<string, VectorLike>;
  attributes?: Record<string, AttributeValue | ValueMessage | null | undefined>;
  /** Multi-vector fields: a set of vectors per field. */
  multiVectors?: Record<string, VectorLike[]>;
  /** Sparse vector fields. */
  sparseVectors?: Record<string, SparseLike>;
}

/** Changes to one point (UpdatePoints); what is left out stays. */
export interface PointUpdateInput {
  id: string;
  /** null removes the attribute. */
  setAttributes?: Record<string, AttributeValue | ValueMessage | null>;
  removeAttributes?: string[];
  vectors?: Record<string, VectorLike>;
  sparseVectors?: Record<string, SparseLike>;
  /** Optional and sparse vector fields whose vector is removed. */
  removeVectors?: string[];
}

export interface Point {
  id: string;
  vectors: Record<string, Float32Array>;
  attributes: Record<string, AttributeValue | null>;
  multiVectors?: Record<string, Float32Array[]>;
  sparseVectors?: Record<string, Map<number, number>>;
}

export interface Hit {
  id: string;
  /** Squared L2 distance (lower is closer), or IP / cosine (higher is closer). */
  score: number;
  attributes: Record<string, AttributeValue | null>;
  vectors: Record<string, Float32Array>;
  sparseVectors?: Record<string, Map<number, number>>;
}

export interface VectorFieldSpec {
  dim: number;
  metric: 'L2' | 'IP' | 'COSINE';
  /** FLAT, HNSW, IVF_FLAT, IVF_SQ8, IVF_PQ, HNSW_SQ8 */
  index?: string;
  params?: Record<string, string | number>;
  storage?: 'MEMORY' | 'DISK';
  [field: string]: unknown;
}

export type AttributeType = 'INT64' | 'DOUBLE' | 'BOOL' | 'STRING' | 'STRING_LIST' |
  'int64' | 'double' | 'bool' | 'string' | 'string_list';
export interface TextOptions { language?: string; stopWords?: boolean; k1?: number; b?: number }
export interface AttributeFieldSpec {
  type: AttributeType; indexed?: boolean; window?: boolean;
  /** STRING only: full-text (BM25) search. */
  text?: boolean | TextOptions;
}

export interface CollectionSpec {
  vectors: Record<string, VectorFieldSpec>;
  attributes?: Record<string, AttributeType | AttributeFieldSpec>;
  sparseVectors?: SparseFieldInput[];
}

/** UpdateCollection's changes, applied all or nothing. */
export interface CollectionChanges {
  /** New attributes, or existing ones with their index flags as they should be. */
  attributes?: Record<string, AttributeType | Partial<AttributeFieldSpec>>;
  /** New vector fields: optional, since points written before lack them. */
  addVectors?: Record<string, VectorFieldSpec>;
  dropVectors?: string[];
  addSparseVectors?: SparseFieldInput[];
  /** A field's new index. */
  indexes?: Record<string, string | { type: string; params?: Record<string, string | number> }>;
}

/** One field's query in a hybrid search, or a stage's: exactly one of
 * vector, multiVector, sparseVector and text. */
export interface FieldQueryInput {
  field: string;
  vector?: VectorLike;
  multiVector?: VectorLike[];
  sparseVector?: SparseLike;
  text?: string;
  /** Field queries: candidates from this field (default: k). */
  k?: number;
  /** Field queries: the weight of this field's scores in the fusion. */
  weight?: number;
  params?: { ef?: number; nprobe?: number; exact?: boolean; refineFactor?: number; filterStrategy?: string; targetRecall?: number };
}

export interface StageInput extends FieldQueryInput {
  /** Candidates this stage keeps (>= k; default k). */
  limit?: number;
}

export interface HybridOptions extends SearchOptions {
  fusion?: 'rrf' | 'weighted' | 'dbsf';
  rrfK?: number;
  /** Multi-stage search: stages re-scoring the fused candidates, in order. */
  stages?: Iterable<StageInput>;
  /** How many of the fused ranking the first stage takes (0: all). */
  candidates?: number;
}

/** A sparse vector field: its name, or with the IDF modifier. */
export type SparseFieldInput = string | { name: string; modifier?: 'idf' | 'none' };

export interface SearchOptions {
  k?: number;
  field?: string;
  filter?: string;
  outputAttributes?: string[];
  withVectors?: boolean;
  params?: { ef?: number; nprobe?: number; exact?: boolean; refineFactor?: number; filterStrategy?: string; targetRecall?: number };
  /** Re-rank the best fetchK by maximal marginal relevance (lambda in [0, 1], default 0.5). */
  diversity?: { lambda?: number; fetchK?: number };
  /** Any other SearchRequest field, by name (camelCase or snake_case). */
  [field: string]: unknown;
}

export interface ClientOptions {
  /** host:port; default $QUIVER_ADDR or 127.0.0.1:50051 */
  address?: string;
  /** Sent as "authorization: Bearer <key>"; default $QUIVER_API_KEY. */
  apiKey?: string;
  /** TLS: true (system CAs) or PEM material. */
  tls?: boolean | { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
  serverName?: string;
  /** Per call; default 60000; 0: no deadline. */
  timeoutMs?: number;
  /** Largest message sent or received; default 64 MiB (the server's default). */
  maxMessageBytes?: number;
  channelOptions?: Record<string, unknown>;
}

export type ServiceKey = 'collections' | 'points' | 'search' | 'snapshots' | 'health';

export class QuiverClient {
  constructor(options?: ClientOptions);
  readonly address: string;
  /** The generated @grpc/grpc-js service clients. */
  readonly stubs: Record<ServiceKey, any>;
  close(): void;
  /** Any unary RPC by service key and method name; the raw response message. */
  call(service: ServiceKey, method: string, request: object, options?: { timeoutMs?: number }): Promise<any>;
  health(service?: string): Promise<string>;
  createCollection(name: string, spec: CollectionSpec): Promise<any>;
  updateCollection(name: string, changes: CollectionChanges): Promise<any>;
  getCollection(name: string): Promise<any>;
  listCollections(): Promise<string[]>;
  dropCollection(name: string): Promise<bigint>;
  // Aliases: every call taking a collection name takes an alias too.
  createAlias(alias: string, collection: string): Promise<bigint>;
  switchAlias(alias: string, collection: string): Promise<bigint>;
  deleteAlias(alias: string): Promise<bigint>;
  listAliases(collection?: string): Promise<AliasInfo[]>;
  upsert(collection: string, points: Iterable<PointInput>): Promise<bigint>;
  upsertBatches(collection: string, points: Iterable<PointInput>,
    options?: { batchSize?: number; onProgress?: (done: number) => void }): Promise<number>;
  get(collection: string, ids: string[], options?: { withVectors?: boolean; attributes?: string[] }): Promise<Point[]>;
  delete(collection: string, options?: { ids?: string[]; filter?: string }): Promise<bigint>;
  count(collection: string, filter?: string): Promise<bigint>;
  scroll(collection: string, options?: { filter?: string; pageSize?: number; withVectors?: boolean;
    attributes?: string[] }): AsyncGenerator<Point>;
  update(collection: string, updates: Iterable<PointUpdateInput>, options?: { upsert?: boolean }):
    Promise<{ sequence: bigint; updated: number; created: number }>;
  search(collection: string, vector: VectorLike, options?: SearchOptions): Promise<Hit[]>;
  search(collection: string, vectors: VectorLike[], options?: SearchOptions): Promise<Hit[][]>;
  searchSparse(collection: string, field: string, query: SparseLike, options?: SearchOptions): Promise<Hit[]>;
  searchSparse(collection: string, field: string, queries: SparseLike[], options?: SearchOptions): Promise<Hit[][]>;
  searchText(collection: string, field: string, query: string, options?: SearchOptions): Promise<Hit[]>;
  searchText(collection: string, field: string, queries: string[], options?: SearchOptions): Promise<Hit[][]>;
  searchHybrid(collection: string, queries: Iterable<FieldQueryInput>, options?: HybridOptions):
    Promise<Hit[]>;
  searchRaw(request: object): Promise<any>;
  createSnapshot(name: string, collection?: string, options?: { timeoutMs?: number }): Promise<any>;
  listSnapshots(): Promise<any[]>;
  deleteSnapshot(name: string): Promise<void>;
}

export class QuiverError extends Error {
  /** The gRPC status code (grpc.status). */
  readonly code: number;
  /** The server's retry hint (write backpressure), if it sent one. */
  readonly retryAfterMs?: number;
}
export class CancelledError extends QuiverError {}
export class UnknownError extends QuiverError {}
export class InvalidArgumentError extends QuiverError {}
export class DeadlineExceededError extends QuiverError {}
export class NotFoundError extends QuiverError {}
export class AlreadyExistsError extends QuiverError {}
export class PermissionDeniedError extends QuiverError {}
export class ResourceExhaustedError extends QuiverError {}
export class FailedPreconditionError extends QuiverError {}

export interface AliasInfo {
  alias: string;
  collection: string;
}
export class AbortedError extends QuiverError {}
export class OutOfRangeError extends QuiverError {}
export class UnimplementedError extends QuiverError {}
export class InternalError extends QuiverError {}
export class UnavailableError extends QuiverError {}
export class DataLossError extends QuiverError {}
export class UnauthenticatedError extends QuiverError {}

export const DEFAULT_ADDRESS: string;
/** A DOUBLE attribute value that happens to be integral. */
export function double(x: number): ValueMessage;
/** camelCase option names to the messages' snake_case; bigint to decimal strings. */
export function requestFields(options: object): object;
/** Throws a TypeError for a field `request` sets that message type `typeName` (e.g. "quiver.v1.SearchRequest") lacks. */
export function checkFields<T extends object>(typeName: string, request: T): T;
export const grpc: typeof import('@grpc/grpc-js');
