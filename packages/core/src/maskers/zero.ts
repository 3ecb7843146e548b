import type { Masker, MaskerFactory, MaskerOptions } from '../masker.js';
import { blend } from './common.js';

/** x̃ = x ⊙ M: removed features become 0 (mid-grey for images normalised with mean 0.5/std 0.5). */
export const zeroMasker: Masker = {
  name: 'zero',
  apply(inputs, masks, rows, space, scratch) {
    return blend(inputs, masks, rows, space, 'zero', undefined, scratch);
  },
};

/** `masker: {use: zero}`. */
export const zeroMaskerFactory: MaskerFactory = {
  name: 'zero',
  create(_options: MaskerOptions): Masker {
    return zeroMasker;
  },
};
