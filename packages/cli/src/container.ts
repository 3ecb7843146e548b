import 'reflect-metadata';
import type { Container } from 'inversify';
import { createContainer, coreModule, loadPlugins } from '@sop/core';
import { backboneOnnxModule } from '@sop/backbone-onnx';
import { backboneHfModule } from '@sop/backbone-hf';
import { baselinesModule } from '@sop/baselines';
import { metricsModule } from '@sop/metrics';

/** The CLI's container: core + every package's ContainerModule + user plugins (--plugin). */
export async function buildContainer(plugins: string[] = [], baseDir = process.cwd()): Promise<Container> {
  const container = await createContainer([coreModule, backboneOnnxModule, backboneHfModule, baselinesModule, metricsModule]);
  if (plugins.length) await loadPlugins(container, plugins, baseDir);
  return container;
}
