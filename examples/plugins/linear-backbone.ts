/**
 * A third-party backbone plugin: a linear (softmax-regression) model whose weights come from a JSON file
 * `{"weight": [[...C rows of d]], "bias": [...C]}`. Load it with `plugins: [./plugins/linear-backbone.ts]` in a
 * config (or `--plugin`) and select it with `backbone: {use: linear-json, path: weights.json}`.
 *
 * It also implements `vjp` (the gradient of a linear model is its weight matrix), so gradient attributors work on it.
 */
import { ContainerModule } from 'inversify';
import { readFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { bindPlugin, UserError, type Backbone, type BackboneFactory, type FloatTensor, type Inputs, type VjpRequest, type VjpResult } from '@sop/core';

export class LinearJsonBackbone implements Backbone {
  readonly name = 'linear-json';
  readonly capabilities = { vjp: true, hidden: false, embeddings: false };
  readonly info;

  constructor(
    readonly weight: Float32Array, // [C, d]
    readonly bias: Float32Array, // [C]
    readonly d: number,
  ) {
    this.info = { outputDim: bias.length, inputShape: [d], classifierWeight: { data: weight, shape: [bias.length, d] } };
  }

  async forward(inputs: Inputs) {
    const x = inputs.x.data as Float32Array;
    const b = inputs.x.shape[0];
    const c = this.bias.length;
    if (x.length !== b * this.d) throw new UserError(`linear-json: expected ${this.d} features per row, got ${x.length / b}`, 'check features/columns of the data');
    const out = new Float32Array(b * c);
    for (let i = 0; i < b; i++)
      for (let k = 0; k < c; k++) {
        let s = this.bias[k];
        for (let j = 0; j < this.d; j++) s += this.weight[k * this.d + j] * x[i * this.d + j];
        out[i * c + k] = s;
      }
    return { output: { data: out, shape: [b, c] } as FloatTensor };
  }

  async vjp(inputs: Inputs, request: VjpRequest): Promise<VjpResult> {
    const outputs = await this.forward(inputs);
    const g = request.cotangents.output!.data;
    const b = inputs.x.shape[0];
    const c = this.bias.length;
    const gx = new Float32Array(b * this.d);
    for (let i = 0; i < b; i++) for (let k = 0; k < c; k++) for (let j = 0; j < this.d; j++) gx[i * this.d + j] += g[i * c + k] * this.weight[k * this.d + j];
    return { outputs, grads: { x: { data: gx, shape: [...inputs.x.shape] } } };
  }
}

export const linearJsonFactory: BackboneFactory = {
  name: 'linear-json',
  async create(options) {
    const file = resolve(options.baseDir, String(options.path ?? ''));
    if (!options.path || !existsSync(file)) throw new UserError(`linear-json: weights file not found: ${file}`, 'set backbone.path to a JSON file {weight: [[...]], bias: [...]}');
    const json = JSON.parse(readFileSync(file, 'utf8')) as { weight: number[][]; bias: number[] };
    const d = json.weight[0].length;
    return new LinearJsonBackbone(Float32Array.from(json.weight.flat()), Float32Array.from(json.bias), d);
  },
};

export default new ContainerModule((options) => {
  bindPlugin(options, 'backbone', 'linear-json', linearJsonFactory, 'examples/plugins/linear-backbone.ts');
});
