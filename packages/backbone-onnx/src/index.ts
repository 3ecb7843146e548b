/**
 * @sop/backbone-onnx — any .onnx model as a SOP backbone (onnxruntime-node, CPU by default).
 *
 *   backbone: {use: onnx, path: model.onnx, input?, output?, hidden?, embeddings?, classifierWeight?,
 *              expose?: [tensor names], maxBatch?: 64, executionProviders?: ['cpu'], threads?, graphOptimizationLevel?,
 *              gradcamLayer?: tensor name, finetune?: [initializer names]}
 *
 * - `OnnxBackbone.load(options)`: one session, chunked forward, intermediates exposed via a cached model copy
 *   (`.sop-cache/` next to the model, or the OS temp dir), `vjp` through ./grad (createVjp) w.r.t. inputs, weights
 *   (`params` replaces stored weights) and intermediates (returned with their values), `parameters()`,
 *   `gradcamLayer()` and `fullgradBiasLayers()` (the defaults of GradCAM / FullGrad).
 * - `inspectModel(path)` + `formatInspection(info)`: what `sop inspect MODEL.onnx` prints.
 * - Graph helpers: `loadModelProto`, `saveModelProto`, `exposeOutputs`, `findLastSpatialTensor`, `findLastTokenTensor`,
 *   `annotateShapes`, `readInitializer`; sessions: `createSession`, `toOrtTensor`, `fromOrtTensor`.
 */
export * from './module.js';
export { OnnxBackbone, DEFAULT_MAX_BATCH } from './backbone.js';
export { parseOnnxBackboneOptions, resolveModelPath } from './options.js';
export type { OnnxBackboneOptions } from './options.js';
export {
  onnx,
  ONNX_DTYPES,
  loadModelProto,
  decodeModelProto,
  encodeModelProto,
  saveModelProto,
  exposeOutputs,
  findLastSpatialTensor,
  listTensors,
  graphInputs,
  readInitializer,
  requireTensor,
  weightLayout,
  valueInfoType,
  toNumber,
  halfToFloat,
  floatToHalf,
} from './proto.js';
export type { ModelProto, IModelProto, Dim, GraphTensor, TensorType } from './proto.js';
export {
  createSession,
  toOrtSessionOptions,
  executionProviderError,
  cudaProviderInstalled,
  sessionInputs,
  sessionOutputs,
  toOrtTensor,
  fromOrtTensor,
  dummyFeeds,
  GRAPH_OPTIMIZATION_LEVELS,
} from './session.js';
export type { SessionConfig, ValueSpec, GraphOptimizationLevel } from './session.js';
export { inspectModel, formatInspection } from './inspect.js';
export { findLastTokenTensor } from './token-layer.js';
export { measureShapes, annotateShapes } from './shapes.js';
export type { MeasuredType, MeasureOptions } from './shapes.js';
export type { ModelInspection, TensorSummary, InspectOptions, FormatOptions } from './inspect.js';
export { writeCachedModel, hashBytes, cacheKey } from './cache.js';
export { closeNames } from './names.js';
