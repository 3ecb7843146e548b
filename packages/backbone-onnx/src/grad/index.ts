/** Reverse-mode differentiation of ONNX graphs (gradient models run in onnxruntime-node) and a VJP helper. */
export {
  buildGradientModel,
  gradientSignature,
  GRAD_BUILDER_VERSION,
  GRAD_METADATA_KEY,
  SUPPORTED_GRADIENT_OPS,
  type GradientModelOptions,
  type GradientSignature,
} from './build-gradient.js';
export { createVjp, type OnnxVjp, type VjpOptions, type VjpOutput } from './vjp.js';
export { onnx, type ModelProto } from './proto.js';
