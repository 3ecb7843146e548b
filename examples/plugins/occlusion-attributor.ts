/**
 * A custom attributor plugin: single-feature occlusion. The attribution of feature i is
 * f_t(x) − f_t(x with feature i removed), where "removed" is whatever the configured masker says.
 * All d occluded copies of every example go through the backbone in one batched call.
 *
 * Use it with `--plugin examples/plugins/occlusion-attributor.ts` and `sop attribute CONFIG --method occlusion`.
 */
import { ContainerModule } from 'inversify';
import { argmaxRows, bindPlugin, type AttributeOptions, type Attribution, type AttributionContext, type Attributor, type Inputs } from '@sop/core';

export class OcclusionAttributor implements Attributor {
  readonly name = 'occlusion';
  readonly access = 'black-box' as const;

  async attribute(inputs: Inputs, ctx: AttributionContext, options: AttributeOptions = {}): Promise<Attribution> {
    const { backbone, space, masker } = ctx;
    const b = inputs.x.shape[0];
    const d = space.numFeatures;
    const base = await backbone.forward(inputs);
    const c = base.output.shape[1];
    const pred = argmaxRows(base.output);
    const targets = new Int32Array(b);
    for (let i = 0; i < b; i++) {
      const t = options.target;
      targets[i] = typeof t === 'number' ? t : Array.isArray(t) ? t[i] : t === 'label' && options.labels ? options.labels[i] : pred[i];
    }
    // one mask per (example, feature): all ones except that feature
    const masks = new Float32Array(b * d * d).fill(1);
    const rows = new Int32Array(b * d);
    for (let i = 0; i < b; i++) for (let j = 0; j < d; j++) {
      masks[(i * d + j) * d + j] = 0;
      rows[i * d + j] = i;
    }
    const occluded = await backbone.forward(masker.apply(inputs, masks, rows, space));
    const values = new Float32Array(b * d);
    for (let i = 0; i < b; i++) for (let j = 0; j < d; j++) {
      values[i * d + j] = base.output.data[i * c + targets[i]] - occluded.output.data[(i * d + j) * c + targets[i]];
    }
    options.onProgress?.(b, b);
    return { values, numFeatures: d, targets, meta: { method: this.name, evaluations: b + b * d } };
  }
}

export default new ContainerModule((options) => {
  bindPlugin(options, 'attributor', 'occlusion', new OcclusionAttributor(), 'examples/plugins/occlusion-attributor.ts');
});
