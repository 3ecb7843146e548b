import { ContainerModule } from 'inversify';

/** This package's plugins, bound by name to core's tokens with bindPlugin(options, slot, name, value, '@sop/backbone-onnx'). */
export const backboneOnnxModule = new ContainerModule((_options) => {});
