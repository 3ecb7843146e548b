/**
 * Reverse-mode differentiation of an ONNX graph into another ONNX graph. The result keeps the forward graph, adds a
 * cotangent input `<output>_grad` shaped like the chosen output, and adds outputs `<wrt>_grad` holding the
 * vector-Jacobian products. Initializers named in `wrt` become graph inputs (moved out of the initializers; their
 * stored values are the caller's to feed, which createVjp does by default), so fine-tuning can feed updated weights.
 */
import { UserError } from '@sop/core';
import { Emitter } from './emitter.js';
import { GraphInfo, topoSort } from './graph-info.js';
import {
  DT,
  FLOAT_TYPES,
  type IModelProto,
  type INodeProto,
  type IValueInfoProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
  onnx,
  tensorDims,
  valueInfoShape,
} from './proto.js';
import type { GradRule, RuleContext } from './rule.js';
import { einsumRule } from './rules-einsum.js';
import { elementwiseRules } from './rules-elementwise.js';
import { nnRules } from './rules-nn.js';
import { resampleRules } from './rules-resample.js';
import { shapeRules } from './rules-shape.js';

export interface GradientModelOptions {
  /** The forward tensor to differentiate (usually a graph output). */
  output: string;
  /**
   * Graph inputs and/or initializers to differentiate with respect to; also intermediate tensors (node outputs), whose
   * gradient is the output's sensitivity to that activation (e.g. GradCAM on the last conv feature map).
   */
  wrt: string[];
  /**
   * Make wrt initializers graph inputs so that updated weights can be fed (default true, for fine-tuning). With
   * false they stay constant initializers: same gradients, and onnxruntime can pre-pack them (faster when the
   * weights never change, e.g. gradients of a frozen backbone w.r.t. its weights for attribution).
   */
  weightsAsInputs?: boolean;
}

/** What the gradient model's extra inputs/outputs are called (also stored in its metadata under `sop.grad`). */
export interface GradientSignature {
  output: string;
  /** Name of the cotangent input. */
  cotangent: string;
  /** wrt name → name of the gradient output. */
  grads: Record<string, string>;
  /** Initializers that became graph inputs (must be fed; createVjp feeds the stored values by default). */
  params: string[];
}

export const GRAD_METADATA_KEY = 'sop.grad';
/** Bumped whenever the generated graphs change (part of the on-disk cache key). */
export const GRAD_BUILDER_VERSION = '6';

/** Ops through which no gradient flows (integer/boolean results, constants, rounding). */
const NO_GRADIENT = new Set([
  'Shape', 'Size', 'Constant', 'ConstantOfShape', 'Range', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual',
  'Not', 'And', 'Or', 'Xor', 'ArgMax', 'ArgMin', 'NonZero', 'Floor', 'Ceil', 'Round', 'Sign', 'IsNaN', 'IsInf',
  'OneHot', 'EyeLike', 'RandomNormal', 'RandomNormalLike', 'RandomUniform', 'RandomUniformLike', 'Multinomial',
  'Bernoulli',
]);

const RULES: Record<string, GradRule> = { ...elementwiseRules, ...shapeRules, ...nnRules, ...resampleRules, Einsum: einsumRule };
const MS_RULES: Record<string, GradRule> = { Gelu: elementwiseRules.Gelu, FastGelu: elementwiseRules.FastGelu };

/** The op types this builder can differentiate (default domain). */
export const SUPPORTED_GRADIENT_OPS: readonly string[] = Object.keys(RULES).sort();

function ruleFor(node: INodeProto): GradRule | undefined {
  const domain = node.domain ?? '';
  const op = node.opType ?? '';
  if (domain === '' || domain === 'ai.onnx') return RULES[op];
  if (domain === 'com.microsoft') return MS_RULES[op];
  return undefined;
}

function defaultOpset(model: ModelProto): number {
  const entry = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  return entry ? Number(entry.version ?? 0) : 0;
}

/** Build the gradient model. Does not modify `model`. */
export function buildGradientModel(model: IModelProto, opts: GradientModelOptions): ModelProto {
  const m = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const graph = m.graph;
  if (!graph) throw new UserError('the ONNX model has no graph', 'check that the file is a valid ONNX model');
  const opset = defaultOpset(m);
  if (opset < 13) {
    throw new UserError(
      `gradients need an ONNX model exported at opset 13 or later (this one is opset ${opset})`,
      're-export the model with opset_version=13..17 (torch.onnx.export(..., opset_version=17))',
    );
  }
  const nodes = topoSort(graph);
  graph.node = nodes as NodeProto[];
  const info = new GraphInfo(graph, nodes);

  const initNames = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  const inputNames = new Set((graph.input ?? []).map((v) => v.name ?? ''));
  const produced = new Set(nodes.flatMap((n) => n.output ?? []));
  const allNames = new Set<string>([...initNames, ...inputNames, ...produced, ...(graph.output ?? []).map((v) => v.name ?? '')]);
  for (const n of nodes) for (const i of n.input ?? []) allNames.add(i);

  const { output } = opts;
  const wrt = [...new Set(opts.wrt)];
  if (!produced.has(output) && !inputNames.has(output)) {
    const outs = (graph.output ?? []).map((v) => v.name).join(', ');
    throw new UserError(`the ONNX model has no tensor named "${output}" to differentiate`, `use one of its outputs: ${outs}`);
  }
  if (wrt.length === 0) throw new UserError('gradient requested with respect to nothing', 'pass at least one input or initializer name in wrt');
  for (const w of wrt) {
    if (!inputNames.has(w) && !initNames.has(w) && !produced.has(w)) {
      const floats = [...inputNames].filter((n) => !initNames.has(n));
      throw new UserError(
        `cannot differentiate with respect to "${w}": the ONNX model has no input, initializer or intermediate tensor of that name`,
        `use an input (${floats.join(', ')}), an initializer (e.g. ${[...initNames].slice(0, 5).join(', ')}) or a node output`,
      );
    }
    const t = info.elemType(w);
    if (t !== undefined && !FLOAT_TYPES.has(t)) {
      throw new UserError(`cannot differentiate with respect to "${w}": it is not a floating-point tensor`, 'choose a float input or weight');
    }
  }

  // Tensors that depend on a wrt tensor (through differentiable float values).
  const fromWrt = new Set<string>(wrt);
  for (const n of nodes) {
    if (NO_GRADIENT.has(n.opType ?? '')) continue;
    if (!(n.input ?? []).some((i) => i && fromWrt.has(i))) continue;
    for (const o of n.output ?? []) {
      const t = info.elemType(o);
      if (o && (t === undefined || FLOAT_TYPES.has(t))) fromWrt.add(o);
    }
  }
  // Tensors the output depends on.
  const toOut = new Set<string>([output]);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k];
    if ((n.output ?? []).some((o) => toOut.has(o))) for (const i of n.input ?? []) if (i) toOut.add(i);
  }

  const wrtSet = new Set(wrt);
  const producers = new Map<string, INodeProto>();
  for (const n of nodes) for (const o of n.output ?? []) if (o) producers.set(o, n);
  const e = new Emitter(allNames, opset, info);
  const unique = (base: string): string => {
    let name = base;
    for (let k = 1; allNames.has(name); k++) name = `${base}${k}`;
    allNames.add(name);
    return name;
  };
  const cotangent = unique(`${output}_grad`);
  const grads = new Map<string, string[]>();
  grads.set(output, [cotangent]);

  if (fromWrt.has(output)) {
    for (let k = nodes.length - 1; k >= 0; k--) {
      const node = nodes[k];
      const outs = node.output ?? [];
      if (!outs.some((o) => o && fromWrt.has(o) && toOut.has(o))) continue;
      const ins = node.input ?? [];
      if (!ins.some((i) => i && fromWrt.has(i))) continue;
      const gOut = outs.map((o) => {
        const parts = o ? grads.get(o) : undefined;
        return parts && parts.length > 0 ? e.sum(parts) : undefined;
      });
      if (gOut.every((g) => g === undefined)) continue;
      const rule = ruleFor(node);
      if (!rule) {
        throw new UserError(
          `cannot differentiate ONNX op ${node.domain ? `${node.domain}.` : ''}${node.opType} (node "${node.name ?? ''}"): no gradient rule for it`,
          `the gradient path from the inputs to "${output}" may only use supported ops (${SUPPORTED_GRADIENT_OPS.join(', ')}); ` +
            'differentiate with respect to a tensor after this node, or re-export the model without it',
        );
      }
      const ctx: RuleContext = {
        node,
        e,
        info,
        opset,
        x: (i) => ins[i] ?? '',
        y: (i) => outs[i] ?? '',
        g: (i) => gOut[i],
        need: (i) => !!ins[i] && fromWrt.has(ins[i]),
        shapeOf: (n) => info.shape(n),
        rankOf: (n) => info.rank(n),
        requireRank: (n) => {
          const r = info.rank(n);
          if (r === undefined) {
            throw new UserError(
              `cannot differentiate ${node.opType} node "${node.name ?? ''}": the rank of its input "${n}" is unknown`,
              'run ONNX shape inference on the model (onnx.shape_inference.infer_shapes) so intermediate shapes are recorded',
            );
          }
          return r;
        },
        constOf: (n) => info.constValues(n),
        producerOf: (n) => producers.get(n),
        isWrt: (n) => wrtSet.has(n),
      };
      const inGrads = rule(ctx);
      inGrads.forEach((g, i) => {
        if (!g || !ctx.need(i)) return;
        const list = grads.get(ins[i]) ?? [];
        list.push(g);
        grads.set(ins[i], list);
      });
    }
  }

  const signature: GradientSignature = { output, cotangent, grads: {}, params: [] };
  const newOutputs: IValueInfoProto[] = [];
  for (const w of wrt) {
    const parts = grads.get(w) ?? [];
    const g = parts.length > 0 ? e.sum(parts) : e.zerosLike(w);
    const name = unique(`${w}_grad`);
    e.op('Identity', [g], {}, { outputs: [name] });
    signature.grads[w] = name;
    const declared = (graph.input ?? []).find((v) => v.name === w);
    const init = (graph.initializer ?? []).find((t) => t.name === w);
    const shape = declared ? valueInfoShape(declared).shape : init ? tensorDims(init) : undefined;
    newOutputs.push(valueInfo(name, info.elemType(w) ?? DT.FLOAT, shape));
  }

  // Graph surgery: new nodes, constants, inputs, outputs.
  graph.node = [...nodes, ...e.nodes] as NodeProto[];
  graph.initializer = [...(graph.initializer ?? []), ...e.initializers] as TensorProto[];
  const declaredOut = (graph.output ?? []).find((v) => v.name === output);
  const outShape = declaredOut ? valueInfoShape(declaredOut).shape : undefined;
  const extraInputs: IValueInfoProto[] = [valueInfo(cotangent, info.elemType(output) ?? DT.FLOAT, outShape)];
  // wrt initializers become required graph inputs (onnxruntime-node cannot feed initializers that are merely
  // overridable); createVjp feeds their stored values when the caller does not.
  const promoted = new Set<string>();
  for (const w of wrt) {
    if (!initNames.has(w) || opts.weightsAsInputs === false) continue;
    const t = (graph.initializer ?? []).find((x) => x.name === w)!;
    // (An initializer already listed as an input, as old exporters wrote them, just loses its default value.)
    if (!inputNames.has(w)) extraInputs.push(valueInfo(w, t.dataType ?? DT.FLOAT, tensorDims(t)));
    signature.params.push(w);
    promoted.add(w);
  }
  graph.initializer = (graph.initializer ?? []).filter((t) => !promoted.has(t.name ?? '')) as TensorProto[];
  graph.input = [...(graph.input ?? []), ...extraInputs] as ValueInfoProto[];
  const outputNames = new Set((graph.output ?? []).map((v) => v.name ?? ''));
  const forwardOut = outputNames.has(output) ? [] : [valueInfo(output, info.elemType(output) ?? DT.FLOAT, undefined)];
  graph.output = [...(graph.output ?? []), ...forwardOut, ...newOutputs] as ValueInfoProto[];
  const known = new Set([...(graph.valueInfo ?? []), ...graph.input, ...graph.output].map((v) => v.name ?? ''));
  const declared = [...e.declared].filter(([n]) => !known.has(n)).map(([n, shape]) => valueInfo(n, DT.FLOAT, shape));
  if (declared.length) graph.valueInfo = [...(graph.valueInfo ?? []), ...declared] as ValueInfoProto[];

  if (e.minOpset > opset) {
    for (const o of m.opsetImport ?? []) if (!o.domain || o.domain === 'ai.onnx') o.version = e.minOpset;
  }
  if (Number(m.irVersion ?? 0) < 8) m.irVersion = 8;
  m.metadataProps = [
    ...(m.metadataProps ?? []).filter((p) => p.key !== GRAD_METADATA_KEY),
    onnx.StringStringEntryProto.create({ key: GRAD_METADATA_KEY, value: JSON.stringify(signature) }),
  ];
  return m;
}

/** Read the signature that buildGradientModel stored in a gradient model. */
export function gradientSignature(model: IModelProto): GradientSignature | undefined {
  const p = (model.metadataProps ?? []).find((q) => q.key === GRAD_METADATA_KEY);
  return p?.value ? (JSON.parse(p.value) as GradientSignature) : undefined;
}

function valueInfo(name: string, elemType: number, shape: (number | string | null)[] | undefined): IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: shape ? { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})) } : undefined,
      },
    },
  };
}
