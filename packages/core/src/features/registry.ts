import type { FeatureSpaceFactory } from '../feature-space.js';
import { columnsFeatures } from './columns.js';
import { patchesFeatures } from './patches.js';
import { segmentsFeatures } from './segments.js';
import { tokensFeatures } from './tokens.js';

/** Core's feature spaces by plugin name (`features: {use: NAME}`). */
export const FEATURE_SPACES: Readonly<Record<string, FeatureSpaceFactory>> = {
  columns: columnsFeatures,
  patches: patchesFeatures,
  segments: segmentsFeatures,
  tokens: tokensFeatures,
};
