/**
 * Gradient of Einsum: for operand i, another Einsum of the output gradient with the other operands producing operand
 * i's subscripts; subscripts that only operand i has (summed away in the forward) are broadcast back with Expand.
 * Supported: explicit or implicit output, no repeated subscript within one operand (no diagonals), an ellipsis only
 * at the start of a term.
 */
import { UserError } from '@sop/core';
import { attrString } from './proto.js';
import type { GradRule, RuleContext } from './rule.js';

type Term = string[]; // letters, '...' as one token

function parseTerm(t: string): Term {
  const out: Term = [];
  for (let i = 0; i < t.length; i++) {
    if (t.startsWith('...', i)) {
      out.push('...');
      i += 2;
    } else out.push(t[i]);
  }
  return out;
}

function unsupported(c: RuleContext, why: string): never {
  throw new UserError(
    `cannot differentiate Einsum node "${c.node.name ?? ''}" (${attrString(c.node, 'equation', '')}): ${why}`,
    'rewrite the contraction with MatMul/Transpose before exporting',
  );
}

export const einsumRule: GradRule = (c) => {
  const { e } = c;
  const eq = attrString(c.node, 'equation', '').replace(/\s+/g, '');
  const [lhs, rhs] = eq.split('->');
  const terms = lhs.split(',').map(parseTerm);
  let out: Term;
  if (rhs !== undefined) out = parseTerm(rhs);
  else {
    const counts = new Map<string, number>();
    for (const t of terms) for (const l of t) counts.set(l, (counts.get(l) ?? 0) + 1);
    out = [...(counts.has('...') ? ['...'] : []), ...[...counts].filter(([l, n]) => n === 1 && l !== '...').map(([l]) => l).sort()];
  }
  for (const t of [...terms, out]) {
    if (new Set(t).size !== t.length) unsupported(c, 'a subscript repeats within one term (diagonal)');
    if (t.indexOf('...') > 0) unsupported(c, 'an ellipsis not at the start of a term');
  }
  const g = c.g(0)!;
  const str = (t: Term): string => t.join('');
  return terms.map((ti, i) => {
    if (!c.need(i)) return undefined;
    const others = terms.filter((_, j) => j !== i);
    const seen = new Set<string>([...out, ...others.flat()]);
    if (ti.includes('...') && !out.includes('...')) unsupported(c, 'the ellipsis is summed away');
    const kept = ti.filter((l) => seen.has(l));
    const inputs = [g, ...terms.map((_, j) => c.x(j)).filter((_, j) => j !== i)];
    const equation = `${[out, ...others].map(str).join(',')}->${str(kept)}`;
    let r = e.op1('Einsum', inputs, { equation });
    const missing = ti.map((l, k) => (seen.has(l) ? -1 : k)).filter((k) => k >= 0);
    if (missing.length > 0) {
      // Positions counted from the end (the ellipsis may stand for any number of dims).
      const rank = ti.length;
      r = e.op1('Expand', [e.unsqueeze(r, missing.map((k) => k - rank)), e.shape(c.x(i))]);
    }
    if (ti.includes('...')) r = e.unbroadcast(r, c.x(i), undefined);
    return r;
  });
};
