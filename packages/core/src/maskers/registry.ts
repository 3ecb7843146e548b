import type { MaskerFactory } from '../masker.js';
import { attentionMaskerFactory, padMaskerFactory } from './attention.js';
import { blurMaskerFactory } from './blur.js';
import { meanMaskerFactory } from './mean.js';
import { zeroMaskerFactory } from './zero.js';

/** Core's maskers by plugin name (`features: {masker: {use: NAME}}`). */
export const MASKERS: Readonly<Record<string, MaskerFactory>> = {
  attention: attentionMaskerFactory,
  blur: blurMaskerFactory,
  mean: meanMaskerFactory,
  pad: padMaskerFactory,
  zero: zeroMaskerFactory,
};
