/**
 * Reverse-mode differentiation of ONNX graphs, run in onnxruntime-node.
 *
 * - `buildGradientModel(model, {output, wrt})`: a new ModelProto = the forward graph + a cotangent input
 *   `<output>_grad` + outputs `<wrt>_grad` (VJPs). Initializers named in `wrt` become graph inputs. Per-op rules live
 *   in rules-*.ts (SUPPORTED_GRADIENT_OPS lists them); an op without a rule on the gradient path is a UserError naming
 *   the op and node. Needs opset ≥ 13 (may raise the opset to 16 for ScatterElements with reduction).
 * - `createVjp(modelPath, {output, wrt})`: builds/caches that model on disk (`<model dir>/.sop-cache/` or the OS temp
 *   dir), one session per wrt set, feeds stored weight values unless given, and returns `{outputs, grads}` per call.
 */
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
