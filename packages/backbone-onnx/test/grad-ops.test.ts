/**
 * Per-op gradient rules checked against central finite differences of the forward graph, on tiny hand-built ONNX
 * graphs run in onnxruntime-node. Inputs stay away from kinks (Relu, pooling maxima) so differences are exact enough.
 */
import { describe, expect, it } from 'vitest';
import { UserError } from '@sop/core';
import { buildGradientModel } from '../src/grad/index.js';
import { type AttrValue, type INodeProto, type ITensorProto, floatTensor, int64Tensor, makeAttrs } from '../src/grad/proto.js';
import { type Feeds, type OpCase, checkOpCase, finiteDiff, makeModel, opNode, rand, relErr, session, toOrt } from '../src/grad/testing.js';

const node = opNode;

type Case = OpCase;

const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);
const positive = (_: string, v: Float32Array): Float32Array => v.map((x) => Math.abs(x) + 0.5);
const awayFromZero = (_: string, v: Float32Array): Float32Array => v.map((x) => (x >= 0 ? x + 0.1 : x - 0.1));
const distinct = (_: string, v: Float32Array): Float32Array => v.map((_x, i) => ((i * 37) % 101) / 25 - 2 + (i % 3) * 0.003);

const y = ['y'];
const cases: Case[] = [
  // Linear algebra
  { name: 'MatMul 2-D', nodes: [node('MatMul', ['a', 'b'], y)], inputs: { a: [3, 4], b: [4, 5] } },
  { name: 'MatMul 3-D x 2-D', nodes: [node('MatMul', ['a', 'b'], y)], inputs: { a: [2, 3, 4], b: [4, 5] } },
  { name: 'MatMul batch broadcast', nodes: [node('MatMul', ['a', 'b'], y)], inputs: { a: [2, 1, 3, 4], b: [3, 4, 2] } },
  { name: 'MatMul 1-D x 3-D', nodes: [node('MatMul', ['a', 'b'], y)], inputs: { a: [4], b: [2, 4, 3] } },
  { name: 'MatMul 3-D x 1-D', nodes: [node('MatMul', ['a', 'b'], y)], inputs: { a: [2, 3, 4], b: [4] } },
  { name: 'MatMul 1-D x 1-D', nodes: [node('MatMul', ['a', 'b'], y)], inputs: { a: [4], b: [4] } },
  ...[0, 1].flatMap((ta) =>
    [0, 1].map(
      (tb): Case => ({
        name: `Gemm transA=${ta} transB=${tb} alpha beta`,
        nodes: [node('Gemm', ['a', 'b', 'c'], y, { transA: ta, transB: tb, alpha: { float: 0.7 }, beta: { float: 1.3 } })],
        inputs: { a: ta ? [4, 3] : [3, 4], b: tb ? [5, 4] : [4, 5], c: [5] },
      }),
    ),
  ),
  { name: 'Gemm C [M,1]', nodes: [node('Gemm', ['a', 'b', 'c'], y)], inputs: { a: [3, 4], b: [4, 5], c: [3, 1] } },
  // Elementwise with broadcasting
  { name: 'Add broadcast', nodes: [node('Add', ['a', 'b'], y)], inputs: { a: [2, 3], b: [3] } },
  { name: 'Sub broadcast both', nodes: [node('Sub', ['a', 'b'], y)], inputs: { a: [2, 1, 4], b: [3, 1] } },
  { name: 'Mul broadcast', nodes: [node('Mul', ['a', 'b'], y)], inputs: { a: [2, 3, 4], b: [1, 3, 1] } },
  { name: 'Mul same input twice', nodes: [node('Mul', ['a', 'a'], y)], inputs: { a: [2, 3] } },
  { name: 'Div broadcast', nodes: [node('Div', ['a', 'b'], y)], inputs: { a: [2, 3], b: [2, 1] }, values: positive },
  {
    name: 'Pow constant exponent 3',
    nodes: [node('Pow', ['a', 'k'], y)],
    inputs: { a: [2, 3] },
    initializers: [floatTensor('k', [], [3])],
    values: positive,
  },
  { name: 'Pow both', nodes: [node('Pow', ['a', 'b'], y)], inputs: { a: [2, 3], b: [3] }, values: positive },
  { name: 'Sqrt', nodes: [node('Sqrt', ['a'], y)], inputs: { a: [2, 3] }, values: positive },
  { name: 'Neg', nodes: [node('Neg', ['a'], y)], inputs: { a: [5] } },
  { name: 'Relu', nodes: [node('Relu', ['a'], y)], inputs: { a: [2, 5] }, values: awayFromZero, eps: 1e-3 },
  { name: 'LeakyRelu', nodes: [node('LeakyRelu', ['a'], y, { alpha: { float: 0.2 } })], inputs: { a: [2, 5] }, values: awayFromZero, eps: 1e-3 },
  { name: 'Erf', nodes: [node('Erf', ['a'], y)], inputs: { a: [2, 5] } },
  { name: 'Gelu (opset 20)', nodes: [node('Gelu', ['a'], y)], inputs: { a: [2, 5] }, opset: 20 },
  { name: 'Gelu tanh (opset 20)', nodes: [node('Gelu', ['a'], y, { approximate: 'tanh' })], inputs: { a: [2, 5] }, opset: 20 },
  { name: 'Tanh', nodes: [node('Tanh', ['a'], y)], inputs: { a: [2, 5] } },
  { name: 'Sigmoid', nodes: [node('Sigmoid', ['a'], y)], inputs: { a: [2, 5] } },
  { name: 'Exp Log', nodes: [node('Exp', ['a'], ['t']), node('Log', ['t'], ['u']), node('Mul', ['u', 't'], y)], inputs: { a: [4] } },
  { name: 'Softmax axis 1', nodes: [node('Softmax', ['a'], y, { axis: 1 })], inputs: { a: [2, 3, 4] } },
  { name: 'LogSoftmax', nodes: [node('LogSoftmax', ['a'], y)], inputs: { a: [2, 5] } },
  {
    name: 'Where',
    nodes: [node('Greater', ['a', 'b'], ['m']), node('Where', ['m', 'a', 'b'], y)],
    inputs: { a: [2, 4], b: [4] },
    values: (n, v) => (n === 'a' ? v : v.map((x) => x * 0.5 + 0.02)),
    eps: 1e-3,
  },
  { name: 'Cast Identity Dropout', nodes: [node('Cast', ['a'], ['t'], { to: 11 }), node('Cast', ['t'], ['u'], { to: 1 }), node('Identity', ['u'], ['v']), node('Dropout', ['v'], y)], inputs: { a: [3] } },
  { name: 'Clip', nodes: [node('Clip', ['a', 'lo', 'hi'], y)], inputs: { a: [6] }, initializers: [floatTensor('lo', [], [-0.5]), floatTensor('hi', [], [0.55])], values: (_, v) => v.map((x) => (Math.abs(Math.abs(x) - 0.5) < 0.06 ? x + 0.13 : x)), eps: 1e-3 },
  // Normalisation
  { name: 'LayerNormalization axis -1', nodes: [node('LayerNormalization', ['a', 's', 'b'], y, { epsilon: { float: 1e-5 } })], inputs: { a: [2, 3, 4], s: [4], b: [4] } },
  { name: 'LayerNormalization axis 1', nodes: [node('LayerNormalization', ['a', 's', 'b'], y, { axis: 1 })], inputs: { a: [2, 3, 4], s: [3, 4], b: [3, 4] } },
  {
    name: 'BatchNormalization (inference)',
    nodes: [node('BatchNormalization', ['a', 's', 'b', 'mean', 'var'], y, { epsilon: { float: 1e-3 } })],
    inputs: { a: [2, 3, 2, 2], s: [3], b: [3], mean: [3], var: [3] },
    values: (n, v) => (n === 'var' ? v.map((x) => Math.abs(x) + 0.5) : v),
  },
  // Reductions (attribute and input forms)
  { name: 'ReduceMean attr axes keepdims=0 (opset 13)', nodes: [node('ReduceMean', ['a'], y, { axes: [1], keepdims: 0 })], inputs: { a: [2, 3, 4] }, opset: 13 },
  { name: 'ReduceMean axes input (opset 18)', nodes: [node('ReduceMean', ['a', 'ax'], y, { keepdims: 0 })], inputs: { a: [2, 3, 4] }, initializers: [int64Tensor('ax', [2], [0, -1])], opset: 18 },
  { name: 'ReduceSum axes input keepdims=1 (opset 13)', nodes: [node('ReduceSum', ['a', 'ax'], y)], inputs: { a: [2, 3, 4] }, initializers: [int64Tensor('ax', [1], [2])], opset: 13 },
  { name: 'ReduceSum all', nodes: [node('ReduceSum', ['a'], y, { keepdims: 0 })], inputs: { a: [2, 3] }, opset: 13 },
  { name: 'ReduceMax', nodes: [node('ReduceMax', ['a'], y, { axes: [1], keepdims: 0 })], inputs: { a: [2, 5] }, opset: 13, values: distinct, eps: 1e-3 },
  // Shape ops
  { name: 'Reshape Transpose', nodes: [node('Reshape', ['a', 'sh'], ['t']), node('Transpose', ['t'], y, { perm: [2, 0, 1] })], inputs: { a: [2, 6] }, initializers: [int64Tensor('sh', [3], [2, 3, -1])] },
  { name: 'Flatten', nodes: [node('Flatten', ['a'], y, { axis: 2 })], inputs: { a: [2, 3, 2] } },
  { name: 'Squeeze Unsqueeze (opset 13)', nodes: [node('Unsqueeze', ['a', 'ax'], ['t']), node('Squeeze', ['t', 'ax2'], ['u']), node('Mul', ['u', 'u'], y)], inputs: { a: [2, 3] }, initializers: [int64Tensor('ax', [2], [0, 2]), int64Tensor('ax2', [1], [0])], opset: 13 },
  { name: 'Concat', nodes: [node('Concat', ['a', 'b', 'c'], y, { axis: -1 })], inputs: { a: [2, 1], b: [2, 3], c: [2, 2] } },
  {
    name: 'Slice negative steps',
    nodes: [node('Slice', ['a', 'st', 'en', 'ax', 'sp'], y)],
    inputs: { a: [3, 6] },
    initializers: [int64Tensor('st', [2], [-1, 0]), int64Tensor('en', [2], [-100, 6]), int64Tensor('ax', [2], [0, 1]), int64Tensor('sp', [2], [-2, 2])],
  },
  { name: 'Split with split input, one output unused (opset 13)', nodes: [node('Split', ['a', 'sp'], ['p', 'q', 'r'], { axis: 1 }), node('Mul', ['p', 'r'], y)], inputs: { a: [2, 5] }, initializers: [int64Tensor('sp', [3], [2, 1, 2])], opset: 13 },
  { name: 'Split num_outputs (opset 18)', nodes: [node('Split', ['a'], ['p', 'q'], { axis: 0, num_outputs: 2 }), node('Sub', ['p', 'q'], y)], inputs: { a: [4, 3] }, opset: 18 },
  { name: 'Gather repeated indices axis 1', nodes: [node('Gather', ['a', 'i'], y, { axis: 1 })], inputs: { a: [2, 4] }, initializers: [int64Tensor('i', [2, 3], [0, 3, 0, -1, 1, 1])] },
  { name: 'Slice unit steps (static pad path)', nodes: [node('Slice', ['a', 'st', 'en', 'ax'], y)], inputs: { a: [3, 6] }, initializers: [int64Tensor('st', [2], [1, -4]), int64Tensor('en', [2], [100, -1]), int64Tensor('ax', [2], [0, 1])] },
  { name: 'Gather scalar index (pad path)', nodes: [node('Gather', ['a', 'i'], y, { axis: 1 })], inputs: { a: [2, 4, 3] }, initializers: [int64Tensor('i', [], [2])] },
  {
    name: 'Gather negative scalar index, dynamic size',
    nodes: [node('Reshape', ['a', 'sh'], ['t']), node('Gather', ['t', 'i'], y, { axis: -2 })],
    inputs: { a: [2, 12] },
    initializers: [int64Tensor('sh', [3], [2, -1, 3]), int64Tensor('i', [], [-1])],
  },
  { name: 'Expand', nodes: [node('Expand', ['a', 'sh'], y)], inputs: { a: [3, 1] }, initializers: [int64Tensor('sh', [3], [2, 3, 4])] },
  // Convolution and pooling
  {
    name: 'Conv groups/strides/pads/dilations',
    nodes: [node('Conv', ['x', 'w', 'b'], y, { group: 2, strides: [2, 1], pads: [1, 2, 0, 1], dilations: [1, 2], kernel_shape: [3, 2] })],
    inputs: { x: [2, 4, 6, 5], w: [6, 2, 3, 2], b: [6] },
  },
  {
    name: 'Conv stride 1 (conv-as-gradient path) groups/dilations/asymmetric pads',
    nodes: [node('Conv', ['x', 'w', 'b'], y, { group: 2, pads: [2, 1, 0, 2], dilations: [2, 1], kernel_shape: [2, 3] })],
    inputs: { x: [2, 4, 5, 5], w: [6, 2, 2, 3], b: [6] },
  },
  { name: 'Conv 1-D stride 3 leftover', nodes: [node('Conv', ['x', 'w'], y, { strides: [3], pads: [1, 0] })], inputs: { x: [1, 2, 8], w: [3, 2, 2] } },
  { name: 'Conv auto_pad SAME_UPPER', nodes: [node('Conv', ['x', 'w'], y, { auto_pad: 'SAME_UPPER', strides: [2, 2] })], inputs: { x: [1, 1, 5, 5], w: [2, 1, 2, 2] } },
  { name: 'MaxPool overlapping, batch 2', nodes: [node('MaxPool', ['x'], y, { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] })], inputs: { x: [2, 2, 5, 5] }, values: distinct, eps: 1e-3 },
  { name: 'MaxPool 2x2 non-overlapping, odd size (window path)', nodes: [node('MaxPool', ['x'], y, { kernel_shape: [2, 2], strides: [2, 2] })], inputs: { x: [2, 3, 5, 7] }, values: distinct, eps: 1e-3 },
  { name: 'MaxPool 2x2 non-overlapping, even size (window path)', nodes: [node('MaxPool', ['x'], y, { kernel_shape: [2, 2], strides: [2, 2] })], inputs: { x: [2, 3, 4, 6] }, values: distinct, eps: 1e-3 },
  { name: 'MaxPool 3x2 non-overlapping (window path)', nodes: [node('MaxPool', ['x'], y, { kernel_shape: [3, 2], strides: [3, 2] })], inputs: { x: [1, 2, 6, 4] }, values: distinct, eps: 1e-3 },
  { name: 'MaxPool ceil_mode', nodes: [node('MaxPool', ['x'], y, { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 })], inputs: { x: [1, 2, 5, 5] }, values: distinct, eps: 1e-3 },
  { name: 'AveragePool count_include_pad=0', nodes: [node('AveragePool', ['x'], y, { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] })], inputs: { x: [2, 2, 6, 5] } },
  { name: 'AveragePool count_include_pad=1', nodes: [node('AveragePool', ['x'], y, { kernel_shape: [2, 3], strides: [1, 2], pads: [1, 0, 0, 1], count_include_pad: 1 })], inputs: { x: [1, 3, 4, 5] } },
  { name: 'AveragePool stride 1, count_include_pad=0 (pooling adjoint)', nodes: [node('AveragePool', ['x'], y, { kernel_shape: [2, 3], pads: [1, 2, 0, 1] })], inputs: { x: [2, 2, 5, 6] } },
  { name: 'AveragePool stride 1, count_include_pad=1 (pooling adjoint)', nodes: [node('AveragePool', ['x'], y, { kernel_shape: [3, 2], pads: [1, 0, 2, 1], count_include_pad: 1 })], inputs: { x: [1, 3, 4, 5] } },
  { name: 'AveragePool 1-D stride 1, no pads', nodes: [node('AveragePool', ['x'], y, { kernel_shape: [3] })], inputs: { x: [2, 3, 7] } },
  { name: 'GlobalAveragePool', nodes: [node('GlobalAveragePool', ['x'], y)], inputs: { x: [2, 3, 2, 3] } },
  { name: 'GlobalAveragePool, 16 channels (depthwise Conv + Resize)', nodes: [node('GlobalAveragePool', ['x'], y)], inputs: { x: [2, 16, 3, 2] } },
  {
    name: 'Relu → GlobalAveragePool, 32 channels',
    nodes: [node('Relu', ['x'], ['r']), node('GlobalAveragePool', ['r'], y)],
    inputs: { x: [2, 32, 2, 2] },
    values: (_, v) => v.map((t) => (Math.abs(t) < 0.05 ? t + 0.1 : t)),
    eps: 1e-3,
  },
  // More activations, padding, transposed convolution, instance norm
  { name: 'PRelu per-channel slope', nodes: [node('PRelu', ['a', 's'], y)], inputs: { a: [2, 3, 2], s: [3, 1] }, values: (n, v) => (n === 'a' ? awayFromZero(n, v) : v), eps: 1e-3 },
  { name: 'HardSigmoid', nodes: [node('HardSigmoid', ['a'], y, { alpha: { float: 0.3 } })], inputs: { a: [8] }, values: (_, v) => v.map((x) => x * 2.5), eps: 1e-3 },
  { name: 'HardSwish', nodes: [node('HardSwish', ['a'], y)], inputs: { a: [10] }, values: (_, v) => v.map((x) => x * 4.5), eps: 1e-3 },
  { name: 'Softsign', nodes: [node('Softsign', ['a'], y)], inputs: { a: [6] } },
  { name: 'Pad constant (pads and crops)', nodes: [node('Pad', ['a', 'p', 'cv'], y)], inputs: { a: [2, 3, 4] }, initializers: [int64Tensor('p', [6], [0, 1, -1, 1, 0, 2]), floatTensor('cv', [], [0.5])] },
  {
    name: 'ConvTranspose stride 2, pads, output_padding (input grad)',
    nodes: [node('ConvTranspose', ['x', 'w', 'b'], y, { strides: [2, 2], pads: [1, 0, 0, 1], output_padding: [1, 0], group: 2 })],
    inputs: { x: [2, 4, 3, 3], w: [4, 3, 3, 2], b: [6] },
    wrt: ['x', 'b'],
  },
  {
    name: 'InstanceNormalization',
    nodes: [node('InstanceNormalization', ['a', 's', 'b'], y, { epsilon: { float: 1e-4 } })],
    inputs: { a: [2, 3, 2, 3], s: [3], b: [3] },
  },
  { name: 'Einsum batched contraction', nodes: [node('Einsum', ['a', 'b'], y, { equation: 'bij,bjk->bik' })], inputs: { a: [2, 3, 4], b: [2, 4, 5] } },
  { name: 'Einsum summed-only index and implicit output', nodes: [node('Einsum', ['a', 'b'], y, { equation: 'ij,jk' })], inputs: { a: [3, 4], b: [4, 2] } },
  { name: 'Einsum index only in one operand (broadcast back)', nodes: [node('Einsum', ['a', 'b'], y, { equation: 'ijs,jk->ik' })], inputs: { a: [3, 4, 2], b: [4, 2] } },
  { name: 'Einsum ellipsis with broadcasting', nodes: [node('Einsum', ['a', 'b'], y, { equation: '...ij,...jk->...ik' })], inputs: { a: [2, 3, 4], b: [1, 4, 2] } },
  // Remaining elementwise / reduction rules
  { name: 'Max Min broadcast', nodes: [node('Max', ['a', 'b'], ['m']), node('Min', ['m', 'c'], y)], inputs: { a: [2, 3], b: [3], c: [2, 1] }, values: (n, v) => distinct(n, v).map((x) => x + (n === 'b' ? 0.37 : n === 'c' ? -0.21 : 0)), eps: 1e-3 },
  { name: 'Sum (3 inputs) and Mean', nodes: [node('Sum', ['a', 'b', 'c'], ['s']), node('Mean', ['s', 'a'], y)], inputs: { a: [2, 3], b: [3], c: [2, 1] } },
  { name: 'Abs Sin Cos Reciprocal', nodes: [node('Abs', ['a'], ['t']), node('Sin', ['t'], ['u']), node('Cos', ['a'], ['v']), node('Add', ['u', 'v'], ['w']), node('Add', ['w', 'two'], ['z']), node('Reciprocal', ['z'], y)], inputs: { a: [6] }, initializers: [floatTensor('two', [], [2.5])], values: awayFromZero, eps: 1e-3 },
  { name: 'Elu Softplus', nodes: [node('Elu', ['a'], ['t'], { alpha: { float: 0.7 } }), node('Softplus', ['t'], y)], inputs: { a: [8] }, values: awayFromZero, eps: 1e-3 },
  { name: 'GlobalMaxPool', nodes: [node('GlobalMaxPool', ['x'], y)], inputs: { x: [2, 3, 2, 3] }, values: distinct, eps: 1e-3 },
  { name: 'ReduceSumSquare ReduceMin (opset 13)', nodes: [node('ReduceSumSquare', ['a'], ['s'], { axes: [1] }), node('ReduceMin', ['a'], ['m'], { axes: [1] }), node('Add', ['s', 'm'], y)], inputs: { a: [2, 5] }, opset: 13, values: distinct, eps: 1e-3 },
  { name: 'GatherElements', nodes: [node('GatherElements', ['a', 'i'], y, { axis: 1 })], inputs: { a: [2, 4] }, initializers: [int64Tensor('i', [2, 3], [0, 3, 0, 1, 1, 2])] },
  // No gradient through shape computations
  {
    name: 'Shape/ConstantOfShape/Range/Equal are constants',
    nodes: [
      node('Shape', ['a'], ['s']),
      node('ConstantOfShape', ['s'], ['ones'], { value: floatTensor('value', [1], [1.5]) }),
      node('Size', ['a'], ['n']),
      node('Range', ['zero', 'n', 'one'], ['r']),
      node('Cast', ['r'], ['rf'], { to: 1 }),
      node('Reshape', ['rf', 's'], ['rr']),
      node('Equal', ['rr', 'rr'], ['eq']),
      node('Where', ['eq', 'a', 'ones'], ['w']),
      node('Mul', ['w', 'rr'], ['t']),
      node('Add', ['t', 'ones'], y),
    ],
    inputs: { a: [2, 3] },
    initializers: [int64Tensor('zero', [], [0]), int64Tensor('one', [], [1])],
  },
];

describe('per-op gradient rules vs finite differences', () => {
  for (const c of cases) it(c.name, () => checkOpCase(c));
});

describe('gradient model structure', () => {
  it('throws a UserError naming an unsupported op and its node', () => {
    const model = makeModel({
      nodes: [{ ...node('LpNormalization', ['a'], ['t']), name: 'my_lpnorm' }, node('Mul', ['t', 'b'], y)],
      inputs: [
        { name: 'a', shape: [2, 3] },
        { name: 'b', shape: [2, 3] },
      ],
      outputs: ['y'],
    });
    expect(() => buildGradientModel(model, { output: 'y', wrt: ['a'] })).toThrow(UserError);
    expect(() => buildGradientModel(model, { output: 'y', wrt: ['a'] })).toThrow(/LpNormalization.*my_lpnorm/);
  });

  it('ignores unsupported ops off the gradient path', async () => {
    const model = makeModel({
      nodes: [node('LpNormalization', ['b'], ['bb']), node('Mul', ['a', 'bb'], y)],
      inputs: [
        { name: 'a', shape: [2, 3] },
        { name: 'b', shape: [2, 3] },
      ],
      outputs: ['y'],
    });
    const grad = buildGradientModel(model, { output: 'y', wrt: ['a'] });
    const gs = await session(grad);
    const a = rand(6, 1);
    const b = rand(6, 2);
    const res = await gs.run(toOrt({ a: { data: a, shape: [2, 3] }, b: { data: b, shape: [2, 3] }, y_grad: { data: new Float32Array(6).fill(1), shape: [2, 3] } }));
    // LpNormalization (p=2, axis=-1) of b, with the all-ones cotangent: d/da (a · bb) = bb.
    const norm = [0, 1].flatMap((r) => {
      const row = Array.from(b.slice(r * 3, r * 3 + 3));
      const n = Math.hypot(...row);
      return row.map((v) => v / n);
    });
    (res.a_grad.data as Float32Array).forEach((g, i) => expect(g).toBeCloseTo(norm[i], 5));
  });

  it.each([
    { shape: [2, 2, 4, 5], kernel: [2, 2] },
    { shape: [2, 2, 4, 6], kernel: [2, 2] },
    { shape: [1, 3, 6, 4], kernel: [3, 2] },
    // C·H·W > 65536: the window priorities are not repeated over the channels.
    { shape: [1, 5, 128, 104], kernel: [2, 2] },
  ])('MaxPool gradients go to the first maximum of tied windows, like MaxPool Indices ($shape, $kernel)', async ({ shape, kernel }) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const x = new Float32Array(size).map((_, i) => (i % 7 < 3 ? 1 : (i % 5) * 0.25));
    const mp = (outs: string[]) => makeModel({ nodes: [node('MaxPool', ['x'], outs, { kernel_shape: kernel, strides: kernel })], inputs: [{ name: 'x', shape }], outputs: outs });
    const withIdxModel = mp(['y', 'idx']);
    withIdxModel.graph!.output![1].type!.tensorType!.elemType = 7;
    const withIdx = await session(withIdxModel);
    const ref = await withIdx.run(toOrt({ x: { data: x, shape } }));
    const cot = rand(ref.y.size, 4);
    const expected = new Float32Array(x.length);
    (ref.idx.data as BigInt64Array).forEach((k, i) => (expected[Number(k)] += cot[i]));
    const gs = await session(buildGradientModel(mp(['y']), { output: 'y', wrt: ['x'] }));
    const res = await gs.run(toOrt({ x: { data: x, shape }, y_grad: { data: cot, shape: [...ref.y.dims] } }));
    expect(Array.from(res.x_grad.data as Float32Array, (v) => v + 0)).toEqual(Array.from(expected));
  });

  it('Relu → MaxPool: the Relu mask applied at pooled resolution is exact, also with the Relu output in wrt', async () => {
    const shape = [2, 3, 4, 6];
    const size = shape.reduce((a, b) => a * b, 1);
    // Many zero windows after the Relu (all-tied maxima) and ties among positive values.
    const x = new Float32Array(size).map((_, i) => (i % 5 < 2 ? -1 : i % 11 < 4 ? 0.5 : (i % 7) * 0.25 - 0.5));
    const net = (outs: string[]) =>
      makeModel({
        nodes: [node('Relu', ['x'], ['r']), node('MaxPool', ['r'], outs, { kernel_shape: [2, 2], strides: [2, 2] })],
        inputs: [{ name: 'x', shape }],
        outputs: outs,
      });
    const withIdxModel = net(['y', 'idx']);
    withIdxModel.graph!.output![1].type!.tensorType!.elemType = 7;
    const ref = await (await session(withIdxModel)).run(toOrt({ x: { data: x, shape } }));
    const cot = rand(ref.y.size, 5);
    const dr = new Float32Array(size);
    (ref.idx.data as BigInt64Array).forEach((k, i) => (dr[Number(k)] += cot[i]));
    const dx = dr.map((v, i) => (x[i] > 0 ? v : 0));
    const feeds = toOrt({ x: { data: x, shape }, y_grad: { data: cot, shape: [...ref.y.dims] } });
    const both = await (await session(buildGradientModel(net(['y']), { output: 'y', wrt: ['x', 'r'] }))).run(feeds);
    expect(Array.from(both.x_grad.data as Float32Array, (v) => v + 0)).toEqual(Array.from(dx));
    expect(Array.from(both.r_grad.data as Float32Array, (v) => v + 0)).toEqual(Array.from(dr));
    const only = await (await session(buildGradientModel(net(['y']), { output: 'y', wrt: ['x'] }))).run(feeds);
    expect(Array.from(only.x_grad.data as Float32Array, (v) => v + 0)).toEqual(Array.from(dx));
  });

  it('rejects unknown names, non-float wrt and old opsets with UserErrors', () => {
    const model = makeModel({ nodes: [node('Relu', ['a'], y)], inputs: [{ name: 'a', shape: [2] }, { name: 'i', shape: [2], type: 'int64' }], outputs: ['y'] });
    expect(() => buildGradientModel(model, { output: 'nope', wrt: ['a'] })).toThrow(UserError);
    expect(() => buildGradientModel(model, { output: 'y', wrt: ['zz'] })).toThrow(/no input, initializer or intermediate/);
    expect(() => buildGradientModel(model, { output: 'y', wrt: ['i'] })).toThrow(/not a floating-point/);
    const old = makeModel({ nodes: [node('Relu', ['a'], y)], inputs: [{ name: 'a', shape: [2] }], outputs: ['y'], opset: 11 });
    expect(() => buildGradientModel(old, { output: 'y', wrt: ['a'] })).toThrow(/opset 13/);
  });

  it('differentiates with respect to an intermediate activation (GradCAM-style) alongside an input', async () => {
    const model = makeModel({
      nodes: [node('Tanh', ['a'], ['t']), node('MatMul', ['t', 'b'], y)],
      inputs: [
        { name: 'a', shape: ['batch', 3] },
        { name: 'b', shape: [3, 2] },
      ],
      outputs: ['y'],
    });
    const gs = await session(buildGradientModel(model, { output: 'y', wrt: ['t', 'a'] }));
    const a = rand(6, 1);
    const b = rand(6, 2);
    const cot = rand(4, 3);
    const res = await gs.run(toOrt({ a: { data: a, shape: [2, 3] }, b: { data: b, shape: [3, 2] }, y_grad: { data: cot, shape: [2, 2] } }));
    const dt = res.t_grad.data as Float32Array;
    for (let r = 0; r < 2; r++) {
      for (let i = 0; i < 3; i++) {
        const expected = cot[r * 2] * b[i * 2] + cot[r * 2 + 1] * b[i * 2 + 1];
        expect(dt[r * 3 + i]).toBeCloseTo(expected, 5);
        expect((res.a_grad.data as Float32Array)[r * 3 + i]).toBeCloseTo(expected * (1 - Math.tanh(a[r * 3 + i]) ** 2), 5);
      }
    }
  });

  it.each([
    { name: 'AveragePool count_include_pad=0, strided', nodes: [node('AveragePool', ['a'], ['t'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] })] },
    { name: 'AveragePool count_include_pad=0, stride 1', nodes: [node('AveragePool', ['a'], ['t'], { kernel_shape: [2, 3], pads: [1, 2, 0, 1] })] },
    { name: 'Flatten', nodes: [node('Flatten', ['a'], ['t'], { axis: 1 })] },
  ])('$name: symbolic shapes (run-time window counts and shapes) give the same gradients as static ones', async ({ nodes }) => {
    // Tanh after the op so the gradient is not constant; the static model is the reference (checked by finite
    // differences above) and the symbolic one must agree with it and with finite differences.
    const shape = [2, 2, 6, 5];
    const all = [...nodes, node('Tanh', ['t'], y)];
    const staticModel = makeModel({ nodes: all, inputs: [{ name: 'a', shape }], outputs: ['y'] });
    const symbolic = makeModel({ nodes: all, inputs: [{ name: 'a', shape: ['n', 2, 'h', 'w'] }], outputs: ['y'] });
    const feeds: Feeds = { a: { data: rand(size(shape), 5), shape } };
    const fwd = await session(staticModel);
    const out = (await fwd.run(toOrt(feeds))).y;
    const cot = rand(out.size, 6);
    const run = async (m: typeof staticModel): Promise<Float32Array> => {
      const gs = await session(buildGradientModel(m, { output: 'y', wrt: ['a'] }));
      return (await gs.run(toOrt({ ...feeds, y_grad: { data: cot, shape: [...out.dims] } }))).a_grad.data as Float32Array;
    };
    const gStatic = await run(staticModel);
    const gSymbolic = await run(symbolic);
    expect(relErr(gSymbolic, gStatic)).toBeLessThan(1e-6);
    expect(relErr(gSymbolic, await finiteDiff(fwd, feeds, 'y', cot, 'a', 1e-2))).toBeLessThan(2e-3);
  });

  it('returns zeros for a wrt tensor the output does not depend on, and leaves the input model untouched', async () => {
    const model = makeModel({ nodes: [node('Relu', ['a'], y), node('Neg', ['b'], ['z'])], inputs: [{ name: 'a', shape: [2] }, { name: 'b', shape: [3] }], outputs: ['y', 'z'] });
    const before = JSON.stringify(model.toJSON());
    const grad = buildGradientModel(model, { output: 'y', wrt: ['b'] });
    expect(JSON.stringify(model.toJSON())).toBe(before);
    const gs = await session(grad);
    const res = await gs.run(toOrt({ a: { data: rand(2, 1), shape: [2] }, b: { data: rand(3, 2), shape: [3] }, y_grad: { data: rand(2, 3), shape: [2] } }));
    expect(Array.from(res.b_grad.data as Float32Array)).toEqual([0, 0, 0]);
  });
});
