import { ContainerModule } from 'inversify';
import { bindPlugin } from '@sop/core';
import { hfBackboneFactory } from './hf-backbone.js';

/** This package's plugins, bound by name to core's tokens with bindPlugin(options, slot, name, value, '@sop/backbone-hf'). */
export const backboneHfModule = new ContainerModule((options) => {
  bindPlugin(options, 'backbone', 'hf', hfBackboneFactory, '@sop/backbone-hf');
});
