import { ContainerModule } from 'inversify';
import { bindPlugin } from '@sop/core';
import type { Backbone, BackboneContext, BackboneFactory, BackboneOptions } from '@sop/core';
import { OnnxBackbone } from './backbone.js';
import { parseOnnxBackboneOptions } from './options.js';

/** `backbone: {use: onnx, path, input?, output?, hidden?, embeddings?, classifierWeight?, expose?, maxBatch?, executionProviders?, threads?, graphOptimizationLevel?}` */
export const onnxBackboneFactory: BackboneFactory = {
  name: 'onnx',
  async create(options: BackboneOptions, _context: BackboneContext): Promise<Backbone> {
    const parsed = parseOnnxBackboneOptions(options);
    return OnnxBackbone.load({ ...parsed, baseDir: options.baseDir });
  },
};

/** This package's plugins, bound by name to core's tokens with bindPlugin(options, slot, name, value, '@sop/backbone-onnx'). */
export const backboneOnnxModule = new ContainerModule((options) => {
  bindPlugin(options, 'backbone', 'onnx', onnxBackboneFactory, '@sop/backbone-onnx');
});
