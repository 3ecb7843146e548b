/** "Did you mean" helpers for names in an ONNX graph. */

function levenshtein(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/**
 * Up to `max` candidates closest to `name`: names containing it (or contained in it) first, then by edit distance
 * (case-insensitive), keeping only reasonably close ones.
 */
export function closeNames(name: string, candidates: string[], max = 5): string[] {
  const q = name.toLowerCase();
  const scored = [...new Set(candidates)]
    .filter((c) => c.length > 0)
    .map((c) => {
      const lc = c.toLowerCase();
      const contains = lc.includes(q) || (lc.length >= 3 && q.includes(lc));
      const d = levenshtein(q, lc);
      return { c, score: contains ? d / 100 : d, contains, d };
    })
    .filter((s) => s.contains || s.d <= Math.max(3, Math.floor(q.length * 0.5)))
    .sort((a, b) => a.score - b.score || a.c.localeCompare(b.c));
  return scored.slice(0, max).map((s) => s.c);
}
