/** AdamW and gradient clipping against torch 2.x reference values; learning-rate schedules at given steps. */
import { describe, expect, it } from 'vitest';
import { AdamW, clipGradNorm, constantSchedule, cosineSchedule, makeSchedule, parameter, warmupInverseSqrt } from '@sop/core';

const close = (got: ArrayLike<number>, want: number[], digits = 6) => want.forEach((w, i) => expect(got[i]).toBeCloseTo(w, digits));

describe('AdamW (torch semantics)', () => {
  it('matches torch.optim.AdamW(lr=0.1, weight_decay=0.01) over two steps', () => {
    // p ← p(1 − lr·wd); first step: m̂/√v̂ = sign(g), so p = 0.999·p − 0.1·sign(g) (by hand: [0.899, −2.098, 0.3997])
    const p = parameter(Float32Array.from([1, -2, 0.3]), [3]);
    const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.01 });
    p.grad = Float32Array.from([0.5, 0.1, -0.02]);
    opt.step();
    close(p.data, [0.899, -2.098, 0.3997]);
    p.grad = Float32Array.from([-0.3, 0.2, 0.0]);
    opt.step();
    close(p.data, [0.8789512515068054, -2.192420244216919, 0.46630606055259705]);
    const st = opt.getState();
    expect(st.step).toBe(2);
    close(st.m[0], [0.015, 0.029, -0.0018]);
    close(st.v[0], [0.00033975, 4.999e-5, 3.996e-7], 9);
  });

  it('matches torch with betas (0.8, 0.99), eps 1e-6, weight_decay 0.1 over three steps', () => {
    const p = parameter(Float32Array.from([1, -2]), [2]);
    const opt = new AdamW([p], { lr: 0.01, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.1 });
    const want = [
      [0.9890000224113464, -2.007999897003174],
      [0.9866620302200317, -2.015815258026123],
      [0.9790711998939514, -2.0222387313842773],
    ];
    [
      [0.5, 0.1],
      [-0.3, 0.2],
      [1, 1],
    ].forEach((g, s) => {
      p.grad = Float32Array.from(g);
      opt.step();
      close(p.data, want[s]);
    });
  });

  it('lrMultiplier scales the step; params without grad are skipped; zeroGrad; state round-trip', () => {
    const p = parameter(Float32Array.from([1]), [1]);
    const q = parameter(Float32Array.from([5]), [1]);
    const opt = new AdamW([p, q], { lr: 0.2, weightDecay: 0 });
    p.grad = Float32Array.from([3]);
    opt.step(0.5);
    expect(p.data[0]).toBeCloseTo(0.9, 6); // 1 − 0.2·0.5·sign(3)
    expect(q.data[0]).toBe(5);
    opt.zeroGrad();
    expect(p.grad).toBeNull();
    const saved = opt.getState();
    const p2 = parameter(Float32Array.from(p.data), [1]);
    const q2 = parameter(Float32Array.from(q.data), [1]);
    const opt2 = new AdamW([p2, q2], { lr: 0.2, weightDecay: 0 });
    opt2.setState(saved);
    p.grad = Float32Array.from([-1]);
    p2.grad = Float32Array.from([-1]);
    opt.step();
    opt2.step();
    expect(p2.data[0]).toBe(p.data[0]);
    expect(() => opt2.setState({ step: 1, m: [new Float32Array(2)], v: [new Float32Array(2)] })).toThrow();
  });
});

describe('clipGradNorm', () => {
  it('returns the total norm and scales like torch.nn.utils.clip_grad_norm_', () => {
    const a = parameter(Float32Array.from([3, 4]), [2]);
    const b = parameter(Float32Array.from([12]), [1]);
    a.grad = Float32Array.from([3, 4]);
    b.grad = Float32Array.from([12]);
    expect(clipGradNorm([a, b], 6.5)).toBeCloseTo(13, 6);
    close(a.grad, [1.4999998807907104, 1.9999998807907104]);
    close(b.grad, [5.999999523162842]);
    // below the limit: untouched
    expect(clipGradNorm([a, b], 100)).toBeCloseTo(6.5, 5);
    close(b.grad, [5.999999523162842]);
  });
});

describe('learning-rate schedules', () => {
  it('warmupInverseSqrt (SOP: warm-up 2000 then √(2000/t), restarted per phase)', () => {
    const s = warmupInverseSqrt(2000);
    expect(s(0)).toBe(0);
    expect(s(1000)).toBe(0.5);
    expect(s(2000)).toBe(1);
    expect(s(8000)).toBe(0.5);
    expect(s(4500)).toBeCloseTo(Math.sqrt(2000 / 4500), 12);
    const ph = warmupInverseSqrt(2000, 10000);
    expect(ph(9999)).toBeCloseTo(Math.sqrt(2000 / 9999), 12);
    expect(ph(10000)).toBe(0);
    expect(ph(11000)).toBe(0.5);
    expect(ph(18000)).toBe(0.5);
  });
  it('cosine with warm-up (HF get_cosine_schedule_with_warmup)', () => {
    const s = cosineSchedule(110, 10);
    expect(s(0)).toBe(0);
    expect(s(5)).toBe(0.5);
    expect(s(10)).toBe(1);
    expect(s(60)).toBeCloseTo(0.5, 12);
    expect(s(35)).toBeCloseTo(0.5 * (1 + Math.cos(Math.PI / 4)), 12);
    expect(s(110)).toBeCloseTo(0, 12);
    expect(s(200)).toBe(0);
  });
  it('constant and makeSchedule', () => {
    expect(constantSchedule()(12345)).toBe(1);
    expect(makeSchedule('constant', {})(7)).toBe(1);
    expect(makeSchedule('warmup-inverse-sqrt', { warmup: 100, phaseLength: 1000 })(1050)).toBe(0.5);
    expect(makeSchedule('cosine', { totalSteps: 100 })(50)).toBeCloseTo(0.5, 12);
    expect(() => makeSchedule('cosine', {})).toThrow(/totalSteps/);
    expect(() => makeSchedule('linear' as never, {})).toThrow(/unknown/);
  });
});
