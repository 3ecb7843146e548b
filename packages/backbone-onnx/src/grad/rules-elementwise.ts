/**
 * Gradient rules for elementwise ops (broadcasting binary arithmetic, activations, casts) and the softmax family.
 * Formulas follow onnxruntime's training gradient builder; broadcasting is undone with Emitter.unbroadcast.
 */
import { UserError } from '@sop/core';
import { DT, FLOAT_TYPES, attrFloat, attrInt, attrString } from './proto.js';
import type { GradRule, RuleContext } from './rule.js';

/** Gradient `grad` (shaped like output 0) reduced to the shape of input i. */
function unb(c: RuleContext, grad: string, i: number): string {
  return c.e.unbroadcast(grad, c.x(i), c.shapeOf(c.y(0)));
}

const when = (c: RuleContext, i: number, f: () => string): string | undefined => (c.need(i) ? f() : undefined);

function softmaxAxis(c: RuleContext): number {
  return attrInt(c.node, 'axis', c.opset >= 13 ? -1 : 1);
}

export const elementwiseRules: Record<string, GradRule> = {
  Add: (c) => [when(c, 0, () => unb(c, c.g(0)!, 0)), when(c, 1, () => unb(c, c.g(0)!, 1))],
  Sub: (c) => [when(c, 0, () => unb(c, c.g(0)!, 0)), when(c, 1, () => unb(c, c.e.neg(c.g(0)!), 1))],
  Mul: (c) => {
    const { e } = c;
    const g = c.g(0)!;
    return [when(c, 0, () => unb(c, e.mul(g, c.x(1)), 0)), when(c, 1, () => unb(c, e.mul(g, c.x(0)), 1))];
  },
  Div: (c) => {
    const { e } = c;
    const g = c.g(0)!;
    return [
      when(c, 0, () => unb(c, e.div(g, c.x(1)), 0)),
      when(c, 1, () => unb(c, e.neg(e.mul(g, e.div(c.y(0), c.x(1)))), 1)),
    ];
  },
  Pow: (c) => {
    const { e } = c;
    const g = c.g(0)!;
    const a = c.x(0);
    const b = c.x(1);
    return [
      when(c, 0, () => {
        const k = c.constOf(b);
        if (k && k.length === 1 && k[0] === 2) return unb(c, e.mul(g, e.mul(a, e.f(2))), 0);
        if (k && k.length === 1 && k[0] === 1) return unb(c, g, 0);
        const bf = FLOAT_TYPES.has(c.info.elemType(b) ?? DT.FLOAT) ? b : e.toFloat(b);
        return unb(c, e.mul(g, e.mul(bf, e.op1('Pow', [a, e.sub(bf, e.f(1))]))), 0);
      }),
      when(c, 1, () => unb(c, e.mul(g, e.mul(c.y(0), e.op1('Log', [a]))), 1)),
    ];
  },
  Sum: (c) => (c.node.input ?? []).map((_, i) => when(c, i, () => unb(c, c.g(0)!, i))),
  Mean: (c) => {
    const n = (c.node.input ?? []).length;
    const gs = c.e.mul(c.g(0)!, c.e.f(1 / n));
    return (c.node.input ?? []).map((_, i) => when(c, i, () => unb(c, gs, i)));
  },
  Max: (c) => minMax(c, 'GreaterOrEqual'),
  Min: (c) => minMax(c, 'LessOrEqual'),
  Where: (c) => {
    const { e } = c;
    const g = c.g(0)!;
    return [
      undefined,
      when(c, 1, () => unb(c, e.maskMul(g, c.x(0)), 1)),
      when(c, 2, () => unb(c, e.maskMul(g, e.op1('Not', [c.x(0)])), 2)),
    ];
  },
  Neg: (c) => [c.e.neg(c.g(0)!)],
  Identity: (c) => [c.g(0)!],
  Dropout: (c) => [c.g(0)],
  Cast: (c) => {
    const t = c.info.elemType(c.x(0));
    if (t !== undefined && !FLOAT_TYPES.has(t)) return [];
    return [c.e.op1('Cast', [c.g(0)!], { to: t ?? DT.FLOAT })];
  },
  Sqrt: (c) => [c.e.div(c.e.mul(c.g(0)!, c.e.f(0.5)), c.y(0))],
  Exp: (c) => [c.e.mul(c.g(0)!, c.y(0))],
  Log: (c) => [c.e.div(c.g(0)!, c.x(0))],
  Reciprocal: (c) => [c.e.neg(c.e.mul(c.g(0)!, c.e.mul(c.y(0), c.y(0))))],
  Abs: (c) => [c.e.mul(c.g(0)!, c.e.op1('Sign', [c.x(0)]))],
  Sin: (c) => [c.e.mul(c.g(0)!, c.e.op1('Cos', [c.x(0)]))],
  Cos: (c) => [c.e.neg(c.e.mul(c.g(0)!, c.e.op1('Sin', [c.x(0)])))],
  Relu: (c) => {
    const g = c.g(0)!;
    // Already masked where the output is 0 (e.g. a MaxPool gradient masked at pooled resolution): nothing to do.
    if (c.e.zeroWhereNonPositive.get(g) === c.y(0)) return [g];
    return [c.e.maskMul(g, c.e.op1('Greater', [c.y(0), c.e.f(0)]))];
  },
  LeakyRelu: (c) => {
    const { e } = c;
    const g = c.g(0)!;
    const alpha = attrFloat(c.node, 'alpha', 0.01);
    const pos = e.op1('Cast', [e.op1('Greater', [c.x(0), e.f(0)])], { to: DT.FLOAT });
    return [e.mul(g, e.add(e.mul(pos, e.f(1 - alpha)), e.f(alpha)))];
  },
  Elu: (c) => {
    const { e } = c;
    const g = c.g(0)!;
    const alpha = attrFloat(c.node, 'alpha', 1);
    return [e.op1('Where', [e.op1('Greater', [c.x(0), e.f(0)]), g, e.mul(g, e.add(c.y(0), e.f(alpha)))])];
  },
  Selu: (c) => {
    const { e } = c;
    const g = c.g(0)!;
    const alpha = attrFloat(c.node, 'alpha', 1.67326319217681884765625);
    const gamma = attrFloat(c.node, 'gamma', 1.05070102214813232421875);
    // x > 0: gamma; else gamma·alpha·exp(x) = y + gamma·alpha.
    const slope = e.op1('Where', [e.op1('Greater', [c.x(0), e.f(0)]), e.f(gamma), e.add(c.y(0), e.f(gamma * alpha))]);
    return [e.mul(g, slope)];
  },
  Celu: (c) => {
    const { e } = c;
    const alpha = attrFloat(c.node, 'alpha', 1);
    // x > 0: 1; else exp(x/alpha) = y/alpha + 1.
    const slope = e.op1('Where', [e.op1('Greater', [c.x(0), e.f(0)]), e.f(1), e.add(e.mul(c.y(0), e.f(1 / alpha)), e.f(1))]);
    return [e.mul(c.g(0)!, slope)];
  },
  ThresholdedRelu: (c) => [c.e.maskMul(c.g(0)!, c.e.op1('Greater', [c.x(0), c.e.f(attrFloat(c.node, 'alpha', 1))]))],
  Mish: (c) => {
    const { e } = c;
    const x = c.x(0);
    // y = x·tanh(softplus(x)); dy/dx = tanh(sp) + x·(1 - tanh²(sp))·sigmoid(x).
    const t = e.op1('Tanh', [e.op1('Softplus', [x])]);
    const rest = e.mul(e.mul(x, e.sub(e.f(1), e.mul(t, t))), e.op1('Sigmoid', [x]));
    return [e.mul(c.g(0)!, e.add(t, rest))];
  },
  Clip: (c) => {
    const { e } = c;
    let mask: string | undefined;
    const lo = c.x(1);
    const hi = c.x(2);
    if (lo) mask = e.op1('Greater', [c.x(0), lo]);
    if (hi) {
      const m = e.op1('Less', [c.x(0), hi]);
      mask = mask ? e.op1('And', [mask, m]) : m;
    }
    return [mask ? e.maskMul(c.g(0)!, mask) : c.g(0)!];
  },
  PRelu: (c) => {
    const { e } = c;
    const g = c.g(0)!;
    const pos = e.op1('Cast', [e.op1('Greater', [c.x(0), e.f(0)])], { to: DT.FLOAT });
    const neg = e.sub(e.f(1), pos);
    return [
      when(c, 0, () => unb(c, e.mul(g, e.add(pos, e.mul(neg, c.x(1)))), 0)),
      when(c, 1, () => unb(c, e.mul(g, e.mul(c.x(0), neg)), 1)),
    ];
  },
  HardSigmoid: (c) => {
    const { e } = c;
    const alpha = attrFloat(c.node, 'alpha', 0.2);
    const beta = attrFloat(c.node, 'beta', 0.5);
    const z = e.add(e.mul(c.x(0), e.f(alpha)), e.f(beta));
    const inside = e.op1('And', [e.op1('Greater', [z, e.f(0)]), e.op1('Less', [z, e.f(1)])]);
    return [e.maskMul(e.mul(c.g(0)!, e.f(alpha)), inside)];
  },
  HardSwish: (c) => {
    const { e } = c;
    const x = c.x(0);
    // y = x·clip(x/6 + 1/2, 0, 1): slope 0 below -3, 1 above 3, x/3 + 1/2 between.
    const mid = e.op1('And', [e.op1('Greater', [x, e.f(-3)]), e.op1('Less', [x, e.f(3)])]);
    const above = e.op1('Cast', [e.op1('GreaterOrEqual', [x, e.f(3)])], { to: DT.FLOAT });
    const slope = e.add(e.op1('Where', [mid, e.add(e.mul(x, e.f(1 / 3)), e.f(0.5)), e.f(0)]), above);
    return [e.mul(c.g(0)!, slope)];
  },
  Softsign: (c) => {
    const { e } = c;
    const d = e.add(e.f(1), e.op1('Abs', [c.x(0)]));
    return [e.div(c.g(0)!, e.mul(d, d))];
  },
  Softplus: (c) => [c.e.mul(c.g(0)!, c.e.op1('Sigmoid', [c.x(0)]))],
  Tanh: (c) => [c.e.mul(c.g(0)!, c.e.sub(c.e.f(1), c.e.mul(c.y(0), c.y(0))))],
  Sigmoid: (c) => [c.e.mul(c.g(0)!, c.e.mul(c.y(0), c.e.sub(c.e.f(1), c.y(0))))],
  Erf: (c) => {
    const { e } = c;
    const x = c.x(0);
    return [e.mul(c.g(0)!, e.mul(e.f(2 / Math.sqrt(Math.PI)), e.op1('Exp', [e.neg(e.mul(x, x))])))];
  },
  Gelu: (c) => [geluGrad(c, attrString(c.node, 'approximate', 'none') === 'tanh')],
  FastGelu: (c) => [geluGrad(c, true)],
  Softmax: (c) => {
    const { e } = c;
    const g = c.g(0)!;
    const y = c.y(0);
    const axis = softmaxAxis(c);
    return [e.mul(y, e.sub(g, e.reduceSum(e.mul(g, y), [axis], true)))];
  },
  LogSoftmax: (c) => {
    const { e } = c;
    const g = c.g(0)!;
    const axis = softmaxAxis(c);
    return [e.sub(g, e.mul(e.op1('Exp', [c.y(0)]), e.reduceSum(g, [axis], true)))];
  },
};

function minMax(c: RuleContext, cmp: 'GreaterOrEqual' | 'LessOrEqual'): (string | undefined)[] {
  const { e } = c;
  const ins = c.node.input ?? [];
  if (ins.length !== 2) return ins.map((_, i) => (c.need(i) ? unsupportedArity(c) : undefined));
  const g = c.g(0)!;
  const pick = e.op1(cmp, [c.x(0), c.x(1)]);
  return [
    when(c, 0, () => unb(c, e.maskMul(g, pick), 0)),
    when(c, 1, () => unb(c, e.maskMul(g, e.op1('Not', [pick])), 1)),
  ];
}

function unsupportedArity(c: RuleContext): never {
  throw new UserError(
    `cannot differentiate ${c.node.opType} node "${c.node.name ?? ''}" with ${(c.node.input ?? []).length} inputs`,
    `nest two-input ${c.node.opType} nodes instead`,
  );
}

/** d/dx of x·Φ(x) (exact) or of its tanh approximation. Input 1 (com.microsoft BiasGelu-style bias) is not used. */
function geluGrad(c: RuleContext, tanhApprox: boolean): string {
  const { e } = c;
  const x = c.x(0);
  const g = c.g(0)!;
  if (!tanhApprox) {
    const cdf = e.mul(e.f(0.5), e.add(e.f(1), e.op1('Erf', [e.mul(x, e.f(Math.SQRT1_2))])));
    const pdf = e.mul(e.f(1 / Math.sqrt(2 * Math.PI)), e.op1('Exp', [e.mul(e.mul(x, x), e.f(-0.5))]));
    return e.mul(g, e.add(cdf, e.mul(x, pdf)));
  }
  const k = Math.sqrt(2 / Math.PI);
  const x2 = e.mul(x, x);
  const u = e.mul(e.f(k), e.add(x, e.mul(e.f(0.044715), e.mul(x2, x))));
  const t = e.op1('Tanh', [u]);
  const du = e.mul(e.f(k), e.add(e.f(1), e.mul(e.f(3 * 0.044715), x2)));
  const left = e.mul(e.f(0.5), e.add(e.f(1), t));
  const right = e.mul(e.mul(e.f(0.5), x), e.mul(e.sub(e.f(1), e.mul(t, t)), du));
  return e.mul(g, e.add(left, right));
}
