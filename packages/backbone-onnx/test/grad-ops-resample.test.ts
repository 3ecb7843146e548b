/**
 * Gradient rules for Tile, Resize, DepthToSpace/SpaceToDepth, CumSum and the extra activations, checked against
 * central finite differences of the forward graph on tiny hand-built ONNX graphs run in onnxruntime-node.
 */
import { describe, expect, it } from 'vitest';
import { UserError } from '@sop/core';
import { buildGradientModel } from '../src/grad/index.js';
import { type AttrValue, type INodeProto, type ITensorProto, floatTensor, int64Tensor, makeAttrs } from '../src/grad/proto.js';
import { type OpCase, checkOpCase, makeModel, opNode } from '../src/grad/testing.js';

const node = opNode;

type Case = OpCase;

const awayFromZero = (_: string, v: Float32Array): Float32Array => v.map((x) => (x >= 0 ? x + 0.1 : x - 0.1));
const y = ['y'];
const scales = (v: number[]): ITensorProto => floatTensor('sc', [v.length], v);
const sizes = (v: number[]): ITensorProto => int64Tensor('sz', [v.length], v);
/** Resize with constant scales (opset 13 form: X, roi, scales). */
const resize = (sc: number[], attrs: Record<string, AttrValue | undefined>): Pick<Case, 'nodes' | 'initializers'> => ({
  nodes: [node('Resize', ['x', '', 'sc'], y, attrs)],
  initializers: [scales(sc)],
});
const nearest = (ctm: string, nm: string): Record<string, AttrValue> => ({ mode: 'nearest', coordinate_transformation_mode: ctm, nearest_mode: nm });
const linear = (ctm: string): Record<string, AttrValue> => ({ mode: 'linear', coordinate_transformation_mode: ctm });

const cases: Case[] = [
  // Tile
  { name: 'Tile 2-D repeats [2, 3]', nodes: [node('Tile', ['a', 'r'], y)], inputs: { a: [2, 3] }, initializers: [int64Tensor('r', [2], [2, 3])] },
  { name: 'Tile size-1 axis, repeat 1 axis', nodes: [node('Tile', ['a', 'r'], y)], inputs: { a: [2, 1, 3] }, initializers: [int64Tensor('r', [3], [1, 4, 2])] },
  { name: 'Tile all repeats 1', nodes: [node('Tile', ['a', 'r'], ['t']), node('Tanh', ['t'], y)], inputs: { a: [3, 2] }, initializers: [int64Tensor('r', [2], [1, 1])] },
  {
    name: 'Tile symbolic input shape (run-time target)',
    nodes: [node('Tile', ['a', 'r'], ['t']), node('Mul', ['t', 't'], y)],
    inputs: { a: [2, 3, 2] },
    declared: { a: ['n', 3, 'w'] },
    initializers: [int64Tensor('r', [3], [3, 1, 2])],
  },
  {
    name: 'Tile repeats computed at run time (Shape of another input)',
    nodes: [node('Shape', ['b'], ['r']), node('Tile', ['a', 'r'], ['t']), node('Mul', ['t', 'b2'], y)],
    inputs: { a: [2, 3, 1], b: [1, 2, 3], b2: [2, 6, 3] },
    declared: { b: ['p', 'q', 'r'] },
    wrt: ['a', 'b2'],
  },
  // Resize, nearest by integer factors (block sums)
  { name: 'Resize nearest x2 asymmetric/floor (nn.Upsample)', ...resize([1, 1, 2, 2], nearest('asymmetric', 'floor')), inputs: { x: [1, 2, 3, 3] } },
  { name: 'Resize nearest x(2,3) asymmetric/floor, symbolic shape', ...resize([1, 1, 2, 3], nearest('asymmetric', 'floor')), inputs: { x: [2, 2, 2, 3] }, declared: { x: ['n', 2, 'h', 'w'] } },
  { name: 'Resize nearest x(3,2) half_pixel/round_prefer_floor (nearest-exact)', ...resize([1, 1, 3, 2], nearest('half_pixel', 'round_prefer_floor')), inputs: { x: [1, 2, 2, 3] } },
  { name: 'Resize nearest x2 pytorch_half_pixel/round_prefer_ceil', ...resize([1, 1, 2, 2], nearest('pytorch_half_pixel', 'round_prefer_ceil')), inputs: { x: [1, 1, 3, 2] } },
  { name: 'Resize nearest x2 defaults (half_pixel, round_prefer_floor), 3-D', ...resize([1, 1, 2], { mode: 'nearest' }), inputs: { x: [2, 2, 4] } },
  { name: 'Resize nearest x2 on the channel axis', ...resize([1, 2, 1, 1], nearest('asymmetric', 'floor')), inputs: { x: [1, 2, 2, 3] } },
  {
    name: 'Resize nearest with sizes input (x2, x3)',
    nodes: [node('Resize', ['x', '', '', 'sz'], y, nearest('asymmetric', 'floor'))],
    initializers: [sizes([1, 2, 6, 6])],
    inputs: { x: [1, 2, 3, 2] },
  },
  // Resize, other nearest modes (interpolation matrices)
  { name: 'Resize nearest x2 half_pixel/floor (not blockwise)', ...resize([1, 1, 2, 2], nearest('half_pixel', 'floor')), inputs: { x: [1, 2, 3, 3] } },
  { name: 'Resize nearest x3 asymmetric/round_prefer_floor (not blockwise)', ...resize([1, 1, 3, 3], nearest('asymmetric', 'round_prefer_floor')), inputs: { x: [1, 1, 3, 2] } },
  { name: 'Resize nearest x0.5 downsampling', ...resize([1, 1, 0.5, 0.5], nearest('asymmetric', 'floor')), inputs: { x: [1, 2, 4, 6] } },
  { name: 'Resize nearest x1.5 align_corners, channel axis x2 (transposed path)', ...resize([1, 2, 1.5, 1], nearest('align_corners', 'round_prefer_ceil')), inputs: { x: [1, 2, 4, 3] } },
  // Resize, linear
  { name: 'Resize bilinear x2 half_pixel (align_corners=False)', ...resize([1, 1, 2, 2], linear('half_pixel')), inputs: { x: [1, 2, 3, 3] } },
  { name: 'Resize bilinear x(2,3) pytorch_half_pixel', ...resize([1, 1, 2, 3], linear('pytorch_half_pixel')), inputs: { x: [2, 1, 2, 3] } },
  {
    name: 'Resize bilinear align_corners with sizes',
    nodes: [node('Resize', ['x', '', '', 'sz'], y, linear('align_corners'))],
    initializers: [sizes([1, 2, 5, 7])],
    inputs: { x: [1, 2, 3, 4] },
  },
  { name: 'Resize bilinear x1.5 asymmetric', ...resize([1, 1, 1.5, 1.5], linear('asymmetric')), inputs: { x: [1, 1, 4, 4] } },
  { name: 'Resize bilinear x0.5 half_pixel (downsampling)', ...resize([1, 1, 0.5, 0.5], linear('half_pixel')), inputs: { x: [1, 2, 4, 6] } },
  { name: 'Resize linear 1-D (3-D input) x2.5', ...resize([1, 1, 2.5], linear('half_pixel')), inputs: { x: [2, 2, 4] } },
  {
    name: 'Resize linear with axes attribute (opset 18)',
    nodes: [node('Resize', ['x', '', 'sc'], y, { ...linear('half_pixel'), axes: [2, 3] })],
    initializers: [scales([2, 2])],
    inputs: { x: [1, 2, 2, 3] },
    opset: 18,
  },
  {
    name: 'Resize nearest x2 with axes attribute, symbolic (opset 18)',
    nodes: [node('Resize', ['x', '', 'sc'], y, { ...nearest('asymmetric', 'floor'), axes: [-1] })],
    initializers: [scales([2])],
    inputs: { x: [2, 3, 2] },
    declared: { x: ['n', 3, 'w'] },
    opset: 18,
  },
  // DepthToSpace / SpaceToDepth
  { name: 'DepthToSpace DCR b=2', nodes: [node('DepthToSpace', ['x'], y, { blocksize: 2, mode: 'DCR' })], inputs: { x: [1, 8, 2, 3] } },
  { name: 'DepthToSpace CRD b=2', nodes: [node('DepthToSpace', ['x'], y, { blocksize: 2, mode: 'CRD' })], inputs: { x: [2, 8, 2, 2] } },
  { name: 'DepthToSpace CRD b=3, symbolic shape', nodes: [node('DepthToSpace', ['x'], y, { blocksize: 3, mode: 'CRD' })], inputs: { x: [1, 18, 1, 2] }, declared: { x: ['n', 'c', 'h', 'w'] } },
  { name: 'SpaceToDepth b=2', nodes: [node('SpaceToDepth', ['x'], y, { blocksize: 2 })], inputs: { x: [1, 2, 4, 6] } },
  { name: 'SpaceToDepth b=3', nodes: [node('SpaceToDepth', ['x'], y, { blocksize: 3 })], inputs: { x: [2, 1, 3, 6] } },
  // AveragePool ceil_mode=1 (windows overhanging the end)
  ...[0, 1].flatMap((cip) => [
    {
      name: `AveragePool ceil_mode 2x2 stride 2 on 5x5, count_include_pad=${cip}`,
      nodes: [node('AveragePool', ['x'], y, { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1, count_include_pad: cip })],
      inputs: { x: [2, 2, 5, 5] },
    },
    {
      name: `AveragePool ceil_mode 3x3 stride 2 pads 1 on 6x5, count_include_pad=${cip}`,
      nodes: [node('AveragePool', ['x'], y, { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1, count_include_pad: cip })],
      inputs: { x: [1, 2, 6, 5] },
    },
    {
      name: `AveragePool ceil_mode 1-D k3 s2 pads [1, 0] on 7, count_include_pad=${cip}`,
      nodes: [node('AveragePool', ['x'], y, { kernel_shape: [3], strides: [2], pads: [1, 0], ceil_mode: 1, count_include_pad: cip })],
      inputs: { x: [2, 1, 7] },
    },
  ]),
  { name: 'AveragePool ceil_mode without overhang (same as floor)', nodes: [node('AveragePool', ['x'], y, { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 })], inputs: { x: [1, 2, 4, 6] } },
  // CumSum
  ...[0, 1].flatMap((exclusive) =>
    [0, 1].map((reverse): Case => ({
      name: `CumSum axis 1 exclusive=${exclusive} reverse=${reverse}`,
      nodes: [node('CumSum', ['a', 'ax'], ['t'], { exclusive, reverse }), node('Mul', ['t', 't'], y)],
      inputs: { a: [2, 5] },
      initializers: [int64Tensor('ax', [], [1])],
    })),
  ),
  { name: 'CumSum negative axis, 3-D', nodes: [node('CumSum', ['a', 'ax'], y, { reverse: 1 })], inputs: { a: [2, 3, 4] }, initializers: [int64Tensor('ax', [], [-3])] },
  // Activations
  { name: 'Selu defaults', nodes: [node('Selu', ['a'], y)], inputs: { a: [2, 5] }, values: awayFromZero, eps: 1e-3 },
  { name: 'Selu alpha gamma', nodes: [node('Selu', ['a'], y, { alpha: { float: 1.3 }, gamma: { float: 0.8 } })], inputs: { a: [8] }, values: (n, v) => awayFromZero(n, v.map((x) => 2 * x)), eps: 1e-3 },
  { name: 'Celu default alpha', nodes: [node('Celu', ['a'], y)], inputs: { a: [2, 5] }, values: awayFromZero, eps: 1e-3 },
  { name: 'Celu alpha 0.5', nodes: [node('Celu', ['a'], y, { alpha: { float: 0.5 } })], inputs: { a: [8] }, values: (n, v) => awayFromZero(n, v.map((x) => 2 * x)), eps: 1e-3 },
  {
    name: 'ThresholdedRelu alpha 0.3',
    nodes: [node('ThresholdedRelu', ['a'], y, { alpha: { float: 0.3 } })],
    inputs: { a: [10] },
    values: (_, v) => v.map((x) => (Math.abs(x - 0.3) < 0.05 ? x + 0.1 : x)),
    eps: 1e-3,
  },
  { name: 'ThresholdedRelu default alpha', nodes: [node('ThresholdedRelu', ['a'], y)], inputs: { a: [10] }, values: (_, v) => v.map((x) => x * 3 + (Math.abs(x * 3 - 1) < 0.1 ? 0.3 : 0)), eps: 1e-3 },
  { name: 'Mish (opset 18)', nodes: [node('Mish', ['a'], y)], inputs: { a: [2, 6] }, values: (_, v) => v.map((x) => x * 4), opset: 18 },
  {
    name: 'Floor Ceil Round Sign carry no gradient',
    nodes: [
      node('Floor', ['a'], ['f']),
      node('Ceil', ['a'], ['c']),
      node('Round', ['a'], ['r']),
      node('Sign', ['a'], ['s']),
      node('Sum', ['f', 'c', 'r', 's'], ['k']),
      node('Mul', ['k', 'a'], y),
    ],
    inputs: { a: [8] },
    // Keep away from integers and half-integers (the steps of Floor/Ceil/Round).
    values: (_, v) => v.map((x) => Math.round(x * 6) / 2 + 0.23),
    eps: 1e-3,
  },
];

describe('gradient rules for Tile, Resize, DepthToSpace/SpaceToDepth, CumSum, activations vs finite differences', () => {
  for (const c of cases) it(c.name, () => checkOpCase(c));
});

describe('unsupported settings', () => {
  it('AveragePool ceil_mode=1 on symbolic spatial sizes is a UserError', () => {
    const m = makeModel({
      nodes: [{ ...node('AveragePool', ['x'], y, { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }), name: 'my_pool' }],
      inputs: [{ name: 'x', shape: [1, 1, 'h', 'w'] }],
      outputs: ['y'],
    });
    expect(() => buildGradientModel(m, { output: 'y', wrt: ['x'] })).toThrow(/my_pool.*ceil_mode=1.*static/);
  });
});

describe('unsupported Resize settings', () => {
  const model = (attrs: Record<string, AttrValue>, extra: Partial<Parameters<typeof makeModel>[0]> = {}) =>
    makeModel({
      nodes: [{ ...node('Resize', ['x', '', 'sc'], y, attrs), name: 'my_resize' }],
      inputs: [{ name: 'x', shape: [1, 1, 2, 2] }],
      outputs: ['y'],
      initializers: [scales([1, 1, 2, 2])],
      ...extra,
    });

  it('cubic mode is a UserError naming the node and the mode', () => {
    const m = model({ mode: 'cubic' });
    expect(() => buildGradientModel(m, { output: 'y', wrt: ['x'] })).toThrow(UserError);
    expect(() => buildGradientModel(m, { output: 'y', wrt: ['x'] })).toThrow(/Resize node "my_resize".*mode=cubic/);
  });

  it('tf_crop_and_resize is a UserError naming the transform', () => {
    expect(() => buildGradientModel(model({ mode: 'linear', coordinate_transformation_mode: 'tf_crop_and_resize' }), { output: 'y', wrt: ['x'] })).toThrow(
      /my_resize.*tf_crop_and_resize/,
    );
  });

  it('non-blockwise nearest or linear on symbolic sizes is a UserError asking for static sizes', () => {
    const m = model(linear('half_pixel'), { inputs: [{ name: 'x', shape: ['n', 1, 'h', 'w'] }] });
    expect(() => buildGradientModel(m, { output: 'y', wrt: ['x'] })).toThrow(/my_resize.*static sizes/);
  });

  it('scales computed at run time are a UserError', () => {
    const m = makeModel({
      nodes: [node('Abs', ['s'], ['sc']), { ...node('Resize', ['x', '', 'sc'], y, { mode: 'nearest' }), name: 'my_resize' }],
      inputs: [
        { name: 'x', shape: [1, 1, 2, 2] },
        { name: 's', shape: [4] },
      ],
      outputs: ['y'],
    });
    expect(() => buildGradientModel(m, { output: 'y', wrt: ['x'] })).toThrow(/my_resize.*run time/);
  });
});
